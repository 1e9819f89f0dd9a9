//! The organisation file `shequctl org load` reads and `org show --json`
//! writes: the proto `Organisation` in JSON with its field names (see
//! `deploy/organisation.example.json`), so operators keep the district's
//! structure in version control.

use std::path::Path;

use anyhow::Context;
use shequ_proto::complaints::v1 as pb;

/// Reads and parses the organisation file at `path`; errors name the file
/// (and the line and column).
pub(crate) fn read(path: &Path) -> anyhow::Result<pb::Organisation> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the organisation file {}", path.display()))?;
    parse(&text).with_context(|| format!("the organisation file {} is not valid", path.display()))
}

/// The organisation in `text`: the proto message in JSON, with its field names.
pub(crate) fn parse(text: &str) -> Result<pb::Organisation, serde_json::Error> {
    serde_json::from_str(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../deploy/organisation.example.json");

    #[test]
    fn the_example_file_becomes_the_proto_message_and_back() -> anyhow::Result<()> {
        let proto = parse(EXAMPLE)?;
        assert_eq!(proto.district_handler, "jinshui-office");
        assert_eq!(proto.communities.len(), 4);
        let xinyuan = &proto.communities[0];
        assert_eq!(
            (xinyuan.id.as_str(), xinyuan.name.as_str()),
            ("xinyuan", "鑫苑社区")
        );
        assert_eq!(xinyuan.grids[0].worker, "worker-li");
        assert_eq!(xinyuan.grids[0].building_ids[0], "xinyuan-b1");
        let written: serde_json::Value = serde_json::to_value(&proto)?;
        let example: serde_json::Value = serde_json::from_str(EXAMPLE)?;
        assert_eq!(written, example, "written as the file says it");
        Ok(())
    }

    #[test]
    fn written_json_reads_back_the_same() -> anyhow::Result<()> {
        let proto = parse(EXAMPLE)?;
        let written = serde_json::to_string_pretty(&proto)?;
        assert_eq!(parse(&written)?, proto);
        Ok(())
    }

    #[test]
    fn a_misspelt_field_is_refused_not_ignored() {
        let text = r#"{"district_handler": "d", "comunities": []}"#;
        let error = parse(text).err().map(|e| e.to_string());
        assert!(
            error.as_deref().is_some_and(|e| e.contains("comunities")),
            "{error:?}"
        );
    }

    #[test]
    fn grids_and_buildings_may_be_left_out() -> anyhow::Result<()> {
        let text = r#"{"district_handler": "d", "communities": [
            {"id": "c", "name": "C", "committee_handler": "h"}]}"#;
        let proto = parse(text)?;
        assert!(proto.communities[0].grids.is_empty());
        Ok(())
    }
}
