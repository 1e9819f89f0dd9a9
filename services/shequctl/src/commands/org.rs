//! `shequctl org`: load and show the grid organisation.

use std::path::Path;

use anyhow::Context;
use serde_json::json;
use shequ_proto::complaints::v1 as pb;
use shequ_proto::complaints::v1::organisation_service_client::OrganisationServiceClient;

use super::{Connection, Target, connect};
use crate::cli::OrgCommand;
use crate::organisation;
use crate::output::{Output, print_json, write_stdout};
use crate::table::Table;

type Client = OrganisationServiceClient<Connection>;

pub(super) async fn run(
    command: &OrgCommand,
    target: &Target,
    output: Output,
) -> anyhow::Result<()> {
    match command {
        OrgCommand::Load { file } => load(target, file, output).await,
        OrgCommand::Show => show(target, output).await,
    }
}

async fn load(target: &Target, path: &Path, output: Output) -> anyhow::Result<()> {
    let organisation = organisation::read(path)?;
    let mut client = Client::new(connect(target).await?);
    let loaded = client
        .load_organisation(pb::LoadOrganisationRequest {
            organisation: Some(organisation),
        })
        .await
        .context("loading the organisation")?
        .into_inner();
    output.print(
        || {
            json!({
                "communities": loaded.communities,
                "grids": loaded.grids,
                "buildings": loaded.buildings,
            })
        },
        || {
            format!(
                "organisation loaded from {}: {} communities, {} grids, {} buildings\n",
                path.display(),
                loaded.communities,
                loaded.grids,
                loaded.buildings
            )
        },
    )
}

async fn show(target: &Target, output: Output) -> anyhow::Result<()> {
    let organisation = Client::new(connect(target).await?)
        .get_organisation(pb::GetOrganisationRequest {})
        .await
        .context("reading the organisation")?
        .into_inner()
        .organisation
        .unwrap_or_default();
    if output.is_json() {
        return print_json(&organisation);
    }
    write_stdout(&tree(&organisation))
}

/// District → communities → grids → buildings, indented.
fn tree(organisation: &pb::Organisation) -> String {
    if organisation.communities.is_empty() && organisation.district_handler.is_empty() {
        return "no organisation loaded (shequctl org load FILE)\n".to_owned();
    }
    let mut table = Table::plain();
    table.row([
        "district",
        "",
        &format!("handler {}", organisation.district_handler),
    ]);
    for community in &organisation.communities {
        table.row([
            format!("  {}", community.id),
            community.name.clone(),
            format!("committee {}", community.committee_handler),
        ]);
        for grid in &community.grids {
            table.row([
                format!("    {}", grid.id),
                grid.name.clone(),
                format!("worker {}, branch {}", grid.worker, grid.branch_handler),
            ]);
            if !grid.building_ids.is_empty() {
                table.row(["      buildings".to_owned(), grid.building_ids.join(", ")]);
            }
        }
    }
    table.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tree_indents_grids_under_their_community() {
        let organisation = pb::Organisation {
            district_handler: "jinshui-office".into(),
            communities: vec![pb::Community {
                id: "xililu".into(),
                name: "西里路社区".into(),
                committee_handler: "xililu-committee".into(),
                grids: vec![pb::Grid {
                    id: "xililu-1".into(),
                    name: "第一网格".into(),
                    worker: "worker-wang".into(),
                    branch_handler: "xililu-1-branch".into(),
                    building_ids: vec!["xililu-b1".into(), "xililu-b2".into()],
                }],
            }],
        };
        let lines: Vec<String> = tree(&organisation).lines().map(str::to_owned).collect();
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert!(lines[0].starts_with("district") && lines[0].ends_with("handler jinshui-office"));
        assert!(lines[1].starts_with("  xililu ") && lines[1].contains("西里路社区"));
        assert!(lines[2].starts_with("    xililu-1 "));
        assert!(
            lines[3].trim_start().starts_with("buildings")
                && lines[3].ends_with("xililu-b1, xililu-b2")
        );
    }
}
