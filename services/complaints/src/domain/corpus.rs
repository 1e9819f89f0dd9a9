//! The labelled corpus classification is measured on, and the measures.
//!
//! `services/complaints/corpus/<category>.jsonl` holds realistic resident texts,
//! one JSON object a line: `id`, `text`, `category` (the code name), `split`
//! (`train`, or `heldout`: never trained on) and `style` (how it came in:
//! `resident_app`, `hotline`, `grid_worker`, `walk_in`, `care_visit`). The texts
//! were written as residents, hotline operators and grid workers phrase
//! problems, not from the classifier's rules.
//!
//! [`Evaluation`] is what `make eval-classify` prints for a classifier over
//! the held-out split: accuracy, per-category precision and recall, the
//! confusion matrix and the share sent to review.

use std::collections::HashMap;

use serde::Deserialize;

use super::kinds::Category;

/// Where a labelled text belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    Train,
    Heldout,
}

/// One labelled text.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Labelled {
    pub id: String,
    pub text: String,
    pub category: Category,
    pub split: Split,
    pub style: String,
}

/// Reads one corpus file; errors name the line.
pub fn parse(jsonl: &str) -> Result<Vec<Labelled>, String> {
    jsonl
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|error| format!("line {}: {error}", i + 1))
        })
        .collect()
}

/// What a classifier answered for one text: a category, or "for review".
pub type Answer = Option<Category>;

/// The measures of a classifier's answers against the labels.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evaluation {
    /// (label, answer) → how many texts; `None` answers went to review.
    pub confusion: HashMap<(Category, Answer), u32>,
    pub texts: u32,
}

impl Evaluation {
    /// Counts each (label, answer) pair.
    pub fn of(pairs: impl IntoIterator<Item = (Category, Answer)>) -> Self {
        let mut evaluation = Self::default();
        for pair in pairs {
            *evaluation.confusion.entry(pair).or_default() += 1;
            evaluation.texts += 1;
        }
        evaluation
    }

    fn count(&self, keep: impl Fn(Category, Answer) -> bool) -> u32 {
        self.confusion
            .iter()
            .filter(|((label, answer), _)| keep(*label, *answer))
            .map(|(_, n)| n)
            .sum()
    }

    /// Right answers among all texts (one sent to review is not right).
    pub fn accuracy(&self) -> f64 {
        ratio(
            self.count(|label, answer| answer == Some(label)),
            self.texts,
        )
    }

    /// Right answers among the texts not sent to review.
    pub fn decided_accuracy(&self) -> f64 {
        ratio(
            self.count(|label, answer| answer == Some(label)),
            self.count(|_, answer| answer.is_some()),
        )
    }

    /// Texts sent to review, of all.
    pub fn review_share(&self) -> f64 {
        ratio(self.count(|_, answer| answer.is_none()), self.texts)
    }

    /// Of the texts answered `category`, those labelled so.
    pub fn precision(&self, category: Category) -> f64 {
        let answered = self.count(|_, answer| answer == Some(category));
        ratio(
            self.count(|label, answer| label == category && answer == Some(category)),
            answered,
        )
    }

    /// Of the texts labelled `category`, those answered so.
    pub fn recall(&self, category: Category) -> f64 {
        let labelled = self.count(|label, _| label == category);
        ratio(
            self.count(|label, answer| label == category && answer == Some(category)),
            labelled,
        )
    }
}

fn ratio(part: u32, whole: u32) -> f64 {
    if whole == 0 {
        0.0
    } else {
        f64::from(part) / f64::from(whole)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_corpus_line_is_read_and_a_bad_one_named() {
        let read = parse(
            "{\"id\":\"env-001\",\"text\":\"垃圾没人收\",\"category\":\"environment_sanitation\",\"split\":\"train\",\"style\":\"hotline\"}\n",
        )
        .unwrap();
        assert_eq!(read[0].category, Category::EnvironmentSanitation);
        assert_eq!(read[0].split, Split::Train);
        let bad = parse("{\"id\":\"x\"}\n{\"id\":\"y\"}").unwrap_err();
        assert!(bad.starts_with("line 1"), "{bad}");
    }

    #[test]
    fn the_corpus_holds_60_texts_a_category_with_about_a_fifth_held_out() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
        let mut ids = std::collections::HashSet::new();
        let mut total = 0;
        for category in Category::ALL {
            let path = dir.join(format!("{}.jsonl", category.as_str()));
            let jsonl = std::fs::read_to_string(&path)
                .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            let texts = parse(&jsonl).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            assert!(
                texts.len() >= 60,
                "{}: {} texts",
                category.as_str(),
                texts.len()
            );
            assert!(
                texts.iter().all(|t| t.category == *category),
                "{}",
                path.display()
            );
            let heldout = texts.iter().filter(|t| t.split == Split::Heldout).count();
            assert!(
                (texts.len() / 6..=texts.len() / 4).contains(&heldout),
                "{}: {heldout} of {} held out",
                category.as_str(),
                texts.len()
            );
            for text in &texts {
                assert!(ids.insert(text.id.clone()), "id {} twice", text.id);
            }
            total += texts.len();
        }
        assert!(total >= 600, "{total} texts");
    }

    #[test]
    fn measures_count_right_answers_and_reviews() {
        use Category::{EnvironmentSanitation as Env, Other};
        let evaluation = Evaluation::of([
            (Env, Some(Env)),
            (Env, Some(Other)),
            (Other, Some(Other)),
            (Other, None),
        ]);
        assert_eq!(evaluation.accuracy(), 0.5);
        assert_eq!(evaluation.review_share(), 0.25);
        assert_eq!(evaluation.precision(Other), 0.5);
        assert_eq!(evaluation.recall(Env), 0.5);
        assert_eq!(evaluation.precision(Env), 1.0);
    }
}
