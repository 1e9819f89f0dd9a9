//! The building-points file `shequctl merchants load-buildings` reads: where
//! each building of the organisation stands, for circle coverage (see
//! `deploy/buildings.example.json`). One datum for the file (`gcj02` is what
//! Chinese map apps give, `wgs84` what GPS does), then the buildings with their
//! grid; ids as in the organisation file.

use std::path::Path;

use anyhow::Context;
use serde::Deserialize;
use shequ_proto::alliance::v1 as pb;
use shequ_proto::common::v1 as common;

use crate::codes;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    datum: String,
    buildings: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    building_id: String,
    grid_id: String,
    latitude: f64,
    longitude: f64,
}

/// Reads and parses the file at `path`; errors name the file (and the line
/// and column).
pub(crate) fn read(path: &Path) -> anyhow::Result<Vec<pb::Building>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the building points file {}", path.display()))?;
    parse(&text)
        .with_context(|| format!("the building points file {} is not valid", path.display()))
}

/// The buildings in `text`, each with the file's datum. The service checks
/// the rest (ids, duplicates, the service area), naming the field.
pub(crate) fn parse(text: &str) -> anyhow::Result<Vec<pb::Building>> {
    let file: File = serde_json::from_str(text)?;
    let datum: common::Datum = codes::parse(&file.datum).map_err(anyhow::Error::msg)?;
    Ok(file
        .buildings
        .into_iter()
        .map(|b| pb::Building {
            building_id: b.building_id,
            grid_id: b.grid_id,
            point: Some(common::GeoPoint {
                latitude: b.latitude,
                longitude: b.longitude,
                datum: datum.into(),
            }),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../deploy/buildings.example.json");
    const ORGANISATION: &str = include_str!("../../../deploy/organisation.example.json");

    #[test]
    fn the_example_file_places_every_building_of_the_example_organisation() -> anyhow::Result<()> {
        let buildings = parse(EXAMPLE)?;
        let organisation = crate::organisation::parse(ORGANISATION)?;
        let mut expected: Vec<(String, String)> = organisation
            .communities
            .iter()
            .flat_map(|c| &c.grids)
            .flat_map(|g| g.building_ids.iter().map(|b| (b.clone(), g.id.clone())))
            .collect();
        let mut placed: Vec<(String, String)> = buildings
            .iter()
            .map(|b| (b.building_id.clone(), b.grid_id.clone()))
            .collect();
        expected.sort();
        placed.sort();
        assert_eq!(placed, expected, "each building once, in its grid");
        let first = buildings[0].point.unwrap_or_default();
        assert_eq!(first.datum, common::Datum::Gcj02 as i32);
        assert!((34.74..=34.90).contains(&first.latitude), "{first:?}");
        Ok(())
    }

    #[test]
    fn a_misspelt_field_or_an_unknown_datum_is_refused() {
        let misspelt = r#"{"datum": "wgs84", "buildings": [
            {"building_id": "b", "grid_id": "g", "lat": 34.8, "longitude": 113.66}]}"#;
        let error = parse(misspelt).err().map(|e| format!("{e:#}"));
        assert!(
            error.as_deref().is_some_and(|e| e.contains("lat")),
            "{error:?}"
        );
        let datum = r#"{"datum": "bd09", "buildings": []}"#;
        let error = parse(datum).err().map(|e| format!("{e:#}"));
        assert!(
            error.as_deref().is_some_and(|e| e.contains("bd09")),
            "{error:?}"
        );
        let missing = r#"{"buildings": []}"#;
        assert!(parse(missing).is_err(), "the datum is required");
    }
}
