//! The organisation file `shequctl org load` reads and `org show --json`
//! writes: a mirror of the proto `Organisation` in plain JSON, so operators
//! keep the district's structure in version control (see
//! `deploy/organisation.example.json`).

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use shequ_proto::complaints::v1 as pb;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OrganisationFile {
    /// Who answers at the district level.
    pub(crate) district_handler: String,
    #[serde(default)]
    pub(crate) communities: Vec<CommunityFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CommunityFile {
    pub(crate) id: String,
    pub(crate) name: String,
    /// Who answers for the community party committee (社区党委).
    pub(crate) committee_handler: String,
    #[serde(default)]
    pub(crate) grids: Vec<GridFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GridFile {
    pub(crate) id: String,
    pub(crate) name: String,
    /// The grid worker (网格员), first to answer.
    pub(crate) worker: String,
    /// Who answers for the grid party branch (网格党支部).
    pub(crate) branch_handler: String,
    #[serde(default)]
    pub(crate) building_ids: Vec<String>,
}

impl OrganisationFile {
    /// Reads and parses `path`; errors name the file (and the line and column).
    pub(crate) fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the organisation file {}", path.display()))?;
        Self::parse(&text)
            .with_context(|| format!("the organisation file {} is not valid", path.display()))
    }

    pub(crate) fn parse(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

impl From<OrganisationFile> for pb::Organisation {
    fn from(file: OrganisationFile) -> Self {
        Self {
            district_handler: file.district_handler,
            communities: file
                .communities
                .into_iter()
                .map(|c| pb::Community {
                    id: c.id,
                    name: c.name,
                    committee_handler: c.committee_handler,
                    grids: c
                        .grids
                        .into_iter()
                        .map(|g| pb::Grid {
                            id: g.id,
                            name: g.name,
                            worker: g.worker,
                            branch_handler: g.branch_handler,
                            building_ids: g.building_ids,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

impl From<pb::Organisation> for OrganisationFile {
    fn from(organisation: pb::Organisation) -> Self {
        Self {
            district_handler: organisation.district_handler,
            communities: organisation
                .communities
                .into_iter()
                .map(|c| CommunityFile {
                    id: c.id,
                    name: c.name,
                    committee_handler: c.committee_handler,
                    grids: c
                        .grids
                        .into_iter()
                        .map(|g| GridFile {
                            id: g.id,
                            name: g.name,
                            worker: g.worker,
                            branch_handler: g.branch_handler,
                            building_ids: g.building_ids,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../deploy/organisation.example.json");

    #[test]
    fn the_example_file_becomes_the_proto_message_and_back() -> anyhow::Result<()> {
        let file = OrganisationFile::parse(EXAMPLE)?;
        let proto = pb::Organisation::from(file.clone());
        assert_eq!(proto.district_handler, "jinshui-office");
        assert_eq!(proto.communities.len(), 4);
        let xinyuan = &proto.communities[0];
        assert_eq!(
            (xinyuan.id.as_str(), xinyuan.name.as_str()),
            ("xinyuan", "鑫苑社区")
        );
        assert_eq!(xinyuan.grids[0].worker, "worker-li");
        assert_eq!(xinyuan.grids[0].building_ids[0], "xinyuan-b1");
        assert_eq!(OrganisationFile::from(proto), file);
        Ok(())
    }

    #[test]
    fn written_json_reads_back_the_same() -> anyhow::Result<()> {
        let file = OrganisationFile::parse(EXAMPLE)?;
        let written = serde_json::to_string_pretty(&file)?;
        assert_eq!(OrganisationFile::parse(&written)?, file);
        Ok(())
    }

    #[test]
    fn a_misspelt_field_is_refused_not_ignored() {
        let text = r#"{"district_handler": "d", "comunities": []}"#;
        let error = OrganisationFile::parse(text).err().map(|e| e.to_string());
        assert!(
            error.as_deref().is_some_and(|e| e.contains("comunities")),
            "{error:?}"
        );
    }

    #[test]
    fn grids_and_buildings_may_be_left_out() -> anyhow::Result<()> {
        let text = r#"{"district_handler": "d", "communities": [
            {"id": "c", "name": "C", "committee_handler": "h"}]}"#;
        let proto = pb::Organisation::from(OrganisationFile::parse(text)?);
        assert!(proto.communities[0].grids.is_empty());
        Ok(())
    }
}
