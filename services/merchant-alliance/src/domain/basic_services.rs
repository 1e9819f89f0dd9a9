//! The basic services of the 15-minute convenience circle (一刻钟便民生活圈)
//! and which merchants serve each: data, not code ([`DEFAULT_JSON`],
//! `basic_services.json` beside this file, or an operator's file of the same
//! form in `SHEQU_BASIC_SERVICES_FILE`).
//!
//! The kinds are the basic-need formats (基本保障类业态) of MOFCOM's guide
//! to building the circle, 《城市一刻钟便民生活圈建设指南》 (2021), which
//! carries out 商务部等12部门《关于推进城市一刻钟便民生活圈建设的意见》
//! (商流通函〔2021〕176号), gathered onto the alliance's merchant categories
//! and service tags; elderly care, which the district's circle serves too, is
//! added and marked as not one of the guide's formats. A merchant serves a
//! kind when its category is listed for it or it offers one of its tags.

use std::collections::HashSet;

use serde::Deserialize;
pub use shequ_proto::kinds::alliance::BasicService;

use super::merchant::{Category, ServiceTag};

/// The district's mapping, as shipped.
pub const DEFAULT_JSON: &str = include_str!("basic_services.json");

/// One basic service and what serves it.
#[derive(Debug, Clone, PartialEq)]
pub struct Served {
    pub kind: BasicService,
    /// The formats (业态) it stands for, in the guide's words.
    pub formats: Vec<String>,
    /// Whether the guide lists it among the basic-need formats.
    pub basic_need_in_guide: bool,
    pub categories: Vec<Category>,
    pub service_tags: Vec<ServiceTag>,
}

/// Every basic service, in [`BasicService::ALL`] order, with what serves it.
#[derive(Debug, Clone, PartialEq)]
pub struct BasicServices {
    /// Where the mapping comes from, in words.
    pub source: String,
    kinds: Vec<Served>,
}

/// The kinds a merchant serves, as a set of [`index`]es.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Kinds(u8);

impl Kinds {
    pub fn contains(self, kind: BasicService) -> bool {
        self.0 & (1 << index(kind)) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn insert(&mut self, kind: BasicService) {
        self.0 |= 1 << index(kind);
    }
}

/// The position of `kind` in [`BasicService::ALL`] (and in every per-kind
/// list of the coverage).
pub fn index(kind: BasicService) -> usize {
    BasicService::ALL
        .iter()
        .position(|k| *k == kind)
        .unwrap_or_default()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    source: String,
    kinds: Vec<KindEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KindEntry {
    kind: BasicService,
    formats: Vec<String>,
    basic_need_in_guide: bool,
    #[serde(default)]
    categories: Vec<Category>,
    #[serde(default)]
    service_tags: Vec<String>,
}

impl BasicServices {
    /// The mapping in `json`: every basic service exactly once, each served by
    /// at least one category or tag, tags as merchants' tags are written.
    pub fn from_json(json: &str) -> Result<Self, String> {
        let file: File = serde_json::from_str(json).map_err(|error| error.to_string())?;
        let mut kinds: Vec<Option<Served>> = vec![None; BasicService::ALL.len()];
        for (i, entry) in file.kinds.into_iter().enumerate() {
            let field = format!("kinds[{i}]");
            let slot = &mut kinds[index(entry.kind)];
            if slot.is_some() {
                return Err(format!("{field}: {} is listed twice", entry.kind.as_str()));
            }
            let service_tags = entry
                .service_tags
                .iter()
                .enumerate()
                .map(|(t, tag)| ServiceTag::parse(&format!("{field}.service_tags[{t}]"), tag))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|error| error.to_string())?;
            if entry.categories.is_empty() && service_tags.is_empty() {
                return Err(format!(
                    "{field}: {} names no category and no tag: no merchant could serve it",
                    entry.kind.as_str()
                ));
            }
            if entry.categories.iter().collect::<HashSet<_>>().len() < entry.categories.len()
                || service_tags.iter().collect::<HashSet<_>>().len() < service_tags.len()
            {
                return Err(format!("{field}: a category or tag is listed twice"));
            }
            *slot = Some(Served {
                kind: entry.kind,
                formats: entry.formats,
                basic_need_in_guide: entry.basic_need_in_guide,
                categories: entry.categories,
                service_tags,
            });
        }
        let kinds = kinds
            .into_iter()
            .zip(BasicService::ALL)
            .map(|(served, kind)| served.ok_or_else(|| format!("{} is missing", kind.as_str())))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            source: file.source,
            kinds,
        })
    }

    /// Every basic service with what serves it, in [`BasicService::ALL`] order.
    pub fn kinds(&self) -> &[Served] {
        &self.kinds
    }

    /// The kinds a merchant of `category` offering `tags` serves.
    pub fn served_by(&self, category: Category, tags: &[ServiceTag]) -> Kinds {
        let mut kinds = Kinds::default();
        for served in &self.kinds {
            if served.categories.contains(&category)
                || served.service_tags.iter().any(|tag| tags.contains(tag))
            {
                kinds.insert(served.kind);
            }
        }
        kinds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(values: &[&str]) -> Vec<ServiceTag> {
        values
            .iter()
            .map(|t| ServiceTag::parse("tag", t).unwrap())
            .collect()
    }

    #[test]
    fn the_shipped_mapping_names_every_basic_service_and_cites_the_guide() {
        let mapping = BasicServices::from_json(DEFAULT_JSON).unwrap();
        let kinds: Vec<BasicService> = mapping.kinds().iter().map(|s| s.kind).collect();
        assert_eq!(kinds, BasicService::ALL);
        assert!(
            mapping.source.contains("商流通函〔2021〕176号"),
            "{}",
            mapping.source
        );
        assert!(mapping.source.contains("城市一刻钟便民生活圈建设指南"));
        let in_guide: Vec<&str> = mapping
            .kinds()
            .iter()
            .filter(|s| s.basic_need_in_guide)
            .flat_map(|s| s.formats.iter().map(String::as_str))
            .collect();
        for format in ["便利店", "菜市场", "早餐店", "维修点", "家政服务点", "药店"]
        {
            assert!(in_guide.contains(&format), "{format} in {in_guide:?}");
        }
        let elderly = &mapping.kinds()[index(BasicService::ElderlyCare)];
        assert!(!elderly.basic_need_in_guide, "added by the district");
        assert_eq!(shequ_proto::codes::check_mapping::<BasicService>(), Ok(()));
    }

    #[test]
    fn each_merchant_category_but_other_serves_a_kind_and_tags_add_kinds() {
        let mapping = BasicServices::from_json(DEFAULT_JSON).unwrap();
        for (category, kind) in [
            (Category::Grocery, BasicService::GroceriesFreshFood),
            (Category::Dining, BasicService::BreakfastDining),
            (Category::Repair, BasicService::Repair),
            (Category::Housekeeping, BasicService::Housekeeping),
            (Category::Health, BasicService::PharmacyHealth),
            (Category::ElderlyCare, BasicService::ElderlyCare),
        ] {
            let served = mapping.served_by(category, &[]);
            assert!(served.contains(kind), "{category:?}");
            let others = BasicService::ALL.iter().filter(|k| served.contains(**k));
            assert_eq!(others.count(), 1, "{category:?} serves one kind alone");
        }
        assert!(mapping.served_by(Category::Other, &[]).is_empty());
        let corner_shop = mapping.served_by(Category::Other, &tags(&["convenience_store"]));
        assert!(corner_shop.contains(BasicService::GroceriesFreshFood));
        let clinic_with_day_care = mapping.served_by(Category::Health, &tags(&["day_care"]));
        assert!(clinic_with_day_care.contains(BasicService::PharmacyHealth));
        assert!(clinic_with_day_care.contains(BasicService::ElderlyCare));
        assert!(
            !mapping
                .served_by(Category::Dining, &tags(&["elder_meals", "takeaway"]))
                .contains(BasicService::ElderlyCare),
            "elder meals are dining, not an elderly-care service"
        );
    }

    #[test]
    fn a_mapping_missing_a_kind_or_listing_one_twice_is_refused() {
        let mut value: serde_json::Value = serde_json::from_str(DEFAULT_JSON).unwrap();
        let kinds = value["kinds"].as_array_mut().unwrap();
        let first = kinds[0].clone();
        kinds.push(first);
        let error = BasicServices::from_json(&value.to_string()).unwrap_err();
        assert!(
            error.contains("groceries_fresh_food is listed twice"),
            "{error}"
        );

        let mut value: serde_json::Value = serde_json::from_str(DEFAULT_JSON).unwrap();
        value["kinds"].as_array_mut().unwrap().remove(3);
        let error = BasicServices::from_json(&value.to_string()).unwrap_err();
        assert!(error.contains("housekeeping is missing"), "{error}");
    }

    #[test]
    fn a_bad_entry_is_refused_naming_it() {
        let mut value: serde_json::Value = serde_json::from_str(DEFAULT_JSON).unwrap();
        value["kinds"][1]["service_tags"] = serde_json::json!(["Breakfast"]);
        let error = BasicServices::from_json(&value.to_string()).unwrap_err();
        assert!(error.contains("kinds[1].service_tags[0]"), "{error}");

        let mut value: serde_json::Value = serde_json::from_str(DEFAULT_JSON).unwrap();
        value["kinds"][2]["categories"] = serde_json::json!([]);
        value["kinds"][2]["service_tags"] = serde_json::json!([]);
        let error = BasicServices::from_json(&value.to_string()).unwrap_err();
        assert!(
            error.contains("kinds[2]: repair names no category"),
            "{error}"
        );

        let mut value: serde_json::Value = serde_json::from_str(DEFAULT_JSON).unwrap();
        value["kinds"][0]["categories"] = serde_json::json!(["bakery"]);
        let error = BasicServices::from_json(&value.to_string()).unwrap_err();
        assert!(error.contains("bakery"), "{error}");

        let mut value: serde_json::Value = serde_json::from_str(DEFAULT_JSON).unwrap();
        value["kinds"][0]["tag"] = serde_json::json!("x");
        let error = BasicServices::from_json(&value.to_string()).unwrap_err();
        assert!(error.contains("unknown field"), "{error}");
    }
}
