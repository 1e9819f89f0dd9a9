//! Proposing a category for a resident's words (分类梳理): a linear model over
//! all the evidence in the text, with a confidence, and review (分类待定)
//! below a threshold instead of a guess.
//!
//! The model is data, [`Weights`]: for each term (a word the segmenter cuts
//! from the text) a weight per category, a bias per category and the review
//! threshold. A text's score for a category is the bias plus the weights of
//! every distinct term found in it; the scores' softmax is the confidence.
//! Nothing depends on the order of the words, and place words (楼道, 电梯口,
//! 楼下) carry only the weight the corpus gives them, which is small because
//! they occur in every category.
//!
//! The shipped weights are [`train`]ed from the labelled corpus's training
//! split (multinomial naive Bayes, centred per term) plus a curated list of
//! weighted terms; an operator corrects a classification by adding lines to
//! the weights file (lines for the same term and category add up), and the
//! service reloads it without a release (see `docs/classification.md`).
//!
//! Every decision names its evidence on the complaint (`classified_by`):
//! `model:<category> <confidence> <term>+<weight> …`, or `review:<best guess>
//! …` when it went to review.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

use super::kinds::Category;

/// How many categories there are; a weight row has one weight for each, in
/// the order of [`Category::ALL`].
const CATEGORIES: usize = Category::ALL.len();

/// One weight per category.
pub type Row = [f64; CATEGORIES];

/// The pseudo-term present when the complaint names a merchant.
pub const MERCHANT_NAMED: &str = "@merchant";

/// How `classified_by` starts for a complaint sent to review.
pub const REVIEW: &str = "review:";

/// How many terms a decision names as its evidence.
const EVIDENCE: usize = 3;

/// The model: weights per term and category, biases, and the threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    bias: Row,
    terms: HashMap<String, Row>,
    /// Below this confidence (0–1) a text goes to review.
    review_below: f64,
}

/// The category proposed for a text, how sure, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    pub category: Category,
    /// The softmax of the scores for `category`, 0–1; 1 for a caller's or an
    /// operator's category.
    pub confidence: f64,
    /// Not confident enough: marked for review (分类待定) and routed to the
    /// community's dispatcher.
    pub pending: bool,
    /// "caller", or the decision with its evidence (see the module doc).
    pub classified_by: String,
}

impl Classification {
    /// The category a caller gave.
    pub fn by_caller(category: Category) -> Self {
        Self {
            category,
            confidence: 1.0,
            pending: false,
            classified_by: "caller".into(),
        }
    }
}

/// `classified_by` as events carry it: the decision and its confidence,
/// without the evidence (words of the resident's text, which never leave the
/// service).
pub fn without_evidence(classified_by: &str) -> &str {
    match classified_by.match_indices(' ').nth(1) {
        Some((end, _)) => &classified_by[..end],
        None => classified_by,
    }
}

/// Whether a recorded `classified_by` is a decision sent to review.
pub fn is_pending(classified_by: &str) -> bool {
    classified_by.starts_with(REVIEW)
}

fn index(category: Category) -> usize {
    Category::ALL
        .iter()
        .position(|c| *c == category)
        .unwrap_or(CATEGORIES - 1)
}

impl Weights {
    /// Reads a weights file: tab-separated lines `term  category  weight`,
    /// `@bias  category  weight`, `@review_below  threshold`; `#` starts a
    /// comment. Lines for the same term and category add up. Errors name the
    /// line.
    pub fn parse(tsv: &str) -> Result<Self, String> {
        let mut weights = Self {
            bias: [0.0; CATEGORIES],
            terms: HashMap::new(),
            review_below: 0.5,
        };
        for (i, line) in tsv.lines().enumerate() {
            let at = |message: String| format!("line {}: {message}", i + 1);
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split('\t').collect();
            let number = |raw: &str| {
                raw.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|w| w.is_finite())
                    .ok_or_else(|| at(format!("{raw:?} is not a number")))
            };
            match fields.as_slice() {
                ["@review_below", threshold] => {
                    let threshold = number(threshold)?;
                    if !(0.0..=1.0).contains(&threshold) {
                        return Err(at(format!("the threshold must be 0 to 1, got {threshold}")));
                    }
                    weights.review_below = threshold;
                }
                [term, category, weight] => {
                    let category = Category::parse(category.trim())
                        .ok_or_else(|| at(format!("{category:?} is not a category")))?;
                    let weight = number(weight)?;
                    let term = term.trim();
                    if term.is_empty() {
                        return Err(at("the term is empty".into()));
                    }
                    let row = if term == "@bias" {
                        &mut weights.bias
                    } else {
                        weights
                            .terms
                            .entry(term.to_owned())
                            .or_insert([0.0; CATEGORIES])
                    };
                    row[index(category)] += weight;
                }
                _ => {
                    return Err(at(
                        "expected term<TAB>category<TAB>weight or @review_below<TAB>threshold"
                            .into(),
                    ));
                }
            }
        }
        Ok(weights)
    }

    /// The file [`parse`](Self::parse) reads back: terms sorted, weights
    /// under 0.005 left out.
    pub fn to_tsv(&self, header: &str) -> String {
        let mut out = String::new();
        for line in header.lines() {
            let _ = writeln!(out, "# {line}");
        }
        let _ = writeln!(out, "@review_below\t{}", self.review_below);
        let mut write_row = |term: &str, row: &Row| {
            for (category, weight) in Category::ALL.iter().zip(row) {
                if weight.abs() >= 0.005 {
                    let _ = writeln!(out, "{term}\t{}\t{weight:.2}", category.as_str());
                }
            }
        };
        write_row("@bias", &self.bias);
        let sorted: BTreeMap<_, _> = self.terms.iter().collect();
        for (term, row) in sorted {
            write_row(term, row);
        }
        out
    }

    /// The terms the model knows, for the segmenter's dictionary.
    pub fn terms(&self) -> impl Iterator<Item = &str> {
        self.terms.keys().map(String::as_str)
    }

    /// The decision rule: scores over the distinct known `words` (and
    /// [`MERCHANT_NAMED`] when `names_a_merchant`), softmax, review below the
    /// threshold. A text with no known word at all goes to review as `other`.
    pub fn decide<'a>(
        &self,
        words: impl IntoIterator<Item = &'a str>,
        names_a_merchant: bool,
    ) -> Classification {
        let mut seen = HashSet::new();
        let mut found: Vec<(&str, &Row)> = Vec::new();
        let merchant = names_a_merchant.then_some(MERCHANT_NAMED);
        for word in words.into_iter().chain(merchant) {
            if let Some((term, row)) = self.terms.get_key_value(word)
                && seen.insert(term.as_str())
            {
                found.push((term.as_str(), row));
            }
        }
        let mut scores = self.bias;
        for (_, row) in &found {
            for (score, weight) in scores.iter_mut().zip(row.iter()) {
                *score += weight;
            }
        }
        let best = (0..CATEGORIES)
            .max_by(|a, b| scores[*a].total_cmp(&scores[*b]))
            .unwrap_or(CATEGORIES - 1);
        let (category, confidence) = if found.is_empty() {
            (Category::Other, 0.0)
        } else {
            let top = scores[best];
            let total: f64 = scores.iter().map(|s| (s - top).exp()).sum();
            (Category::ALL[best], 1.0 / total)
        };
        let pending = confidence < self.review_below;
        let column = index(category);
        found.sort_by(|a, b| b.1[column].total_cmp(&a.1[column]).then(a.0.cmp(b.0)));
        let mut classified_by = format!(
            "{}{} {confidence:.2}",
            if pending { REVIEW } else { "model:" },
            category.as_str()
        );
        for (term, row) in found
            .iter()
            .filter(|(_, row)| row[column] > 0.0)
            .take(EVIDENCE)
        {
            let _ = write!(classified_by, " {term}{:+.1}", row[column]);
        }
        Classification {
            category,
            confidence,
            pending,
            classified_by,
        }
    }
}

/// How [`train`] weighs what it learns.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Training {
    /// Laplace smoothing of the term counts.
    pub smoothing: f64,
    /// A learned term is kept when it occurs in at least this many texts.
    pub min_texts: usize,
    /// The scale of the learned weights against the curated ones.
    pub learned_scale: f64,
    /// The review threshold written into the weights.
    pub review_below: f64,
}

impl Default for Training {
    fn default() -> Self {
        Self {
            smoothing: 0.2,
            min_texts: 1,
            learned_scale: 1.0,
            review_below: 0.7,
        }
    }
}

/// Multinomial naive Bayes over the distinct words of each labelled text,
/// written as weights centred per term (so a word as common in every category
/// as a place word weighs nothing), added to the `curated` weights.
pub fn train<'a>(
    labelled: impl IntoIterator<Item = (Vec<&'a str>, Category)>,
    curated: &Weights,
    training: Training,
) -> Weights {
    let mut texts_per_category = [0usize; CATEGORIES];
    let mut counts: HashMap<&str, [usize; CATEGORIES]> = HashMap::new();
    let mut texts_with: HashMap<&str, usize> = HashMap::new();
    for (words, category) in labelled {
        let c = index(category);
        texts_per_category[c] += 1;
        let distinct: HashSet<&str> = words.into_iter().collect();
        for word in distinct {
            counts.entry(word).or_insert([0; CATEGORIES])[c] += 1;
            *texts_with.entry(word).or_default() += 1;
        }
    }
    counts.retain(|word, _| texts_with[word] >= training.min_texts);
    let vocabulary = counts.len() as f64;
    let mut totals = [0.0; CATEGORIES];
    for row in counts.values() {
        for (total, n) in totals.iter_mut().zip(row) {
            *total += *n as f64;
        }
    }
    let centred = |row: Row| -> Row {
        let mean = row.iter().sum::<f64>() / CATEGORIES as f64;
        row.map(|w| (w - mean) * training.learned_scale)
    };
    let mut weights = curated.clone();
    weights.review_below = training.review_below;
    for (word, row) in counts {
        let mut log_p = [0.0; CATEGORIES];
        for c in 0..CATEGORIES {
            log_p[c] = ((row[c] as f64 + training.smoothing)
                / (totals[c] + training.smoothing * vocabulary))
                .ln();
        }
        let entry = weights
            .terms
            .entry(word.to_owned())
            .or_insert([0.0; CATEGORIES]);
        for (w, learned) in entry.iter_mut().zip(centred(log_p)) {
            *w += learned;
        }
    }
    let all: usize = texts_per_category.iter().sum();
    if all > 0 {
        let prior = texts_per_category.map(|n| ((n.max(1)) as f64 / all as f64).ln());
        for (b, learned) in weights.bias.iter_mut().zip(centred(prior)) {
            *b += learned;
        }
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weights(tsv: &str) -> Weights {
        Weights::parse(tsv).unwrap()
    }

    const SMALL: &str = "@review_below\t0.6\n\
        垃圾\tenvironment_sanitation\t3\n\
        清运\tenvironment_sanitation\t2\n\
        楼道\tproperty_renovation\t0.4\n\
        灭火器\tpublic_safety\t4\n\
        过期\tmerchant_conduct\t1.5\n\
        @merchant\tmerchant_conduct\t2\n";

    #[test]
    fn all_the_evidence_counts_not_the_first_word() {
        let model = weights(SMALL);
        // 过期 comes first, but the extinguisher weighs more.
        let found = model.decide(["过期", "的", "灭火器"], false);
        assert_eq!(found.category, Category::PublicSafety);
        assert!(!found.pending);
        assert!(found.classified_by.starts_with("model:public_safety "));
        assert!(
            found.classified_by.ends_with(" 灭火器+4.0"),
            "{}",
            found.classified_by
        );
    }

    #[test]
    fn a_place_word_is_context_and_the_problem_decides() {
        let found = weights(SMALL).decide(["楼道", "垃圾", "没人", "清运"], false);
        assert_eq!(found.category, Category::EnvironmentSanitation);
        assert_eq!(
            found.classified_by,
            format!(
                "model:environment_sanitation {:.2} 垃圾+3.0 清运+2.0",
                found.confidence
            )
        );
    }

    #[test]
    fn below_the_threshold_the_text_goes_to_review_naming_its_best_guess() {
        let found = weights(SMALL).decide(["楼道"], false);
        assert!(found.pending);
        assert!(found.confidence < 0.6);
        assert!(
            found
                .classified_by
                .starts_with("review:property_renovation ")
        );
        assert!(is_pending(&found.classified_by));
    }

    #[test]
    fn events_carry_the_decision_without_the_words_of_the_text() {
        assert_eq!(
            without_evidence("model:public_safety 0.93 灭火器+4.0 过期+1.1"),
            "model:public_safety 0.93"
        );
        assert_eq!(without_evidence("review:other 0.00"), "review:other 0.00");
        assert_eq!(without_evidence("caller"), "caller");
    }

    #[test]
    fn a_text_with_no_known_word_goes_to_review_as_other() {
        let found = weights(SMALL).decide(["想", "咨询"], false);
        assert_eq!((found.category, found.pending), (Category::Other, true));
        assert_eq!(found.classified_by, "review:other 0.00");
    }

    #[test]
    fn a_named_merchant_is_evidence_like_a_word_and_counts_once() {
        let found = weights(SMALL).decide(["过期", "过期"], true);
        assert_eq!(found.category, Category::MerchantConduct);
        assert!(found.classified_by.contains("@merchant+2.0"));
        assert!(found.classified_by.contains("过期+1.5"));
    }

    #[test]
    fn lines_for_the_same_term_add_up_so_an_operator_can_correct_a_weight() {
        let corrected = weights(&format!(
            "{SMALL}过期\tmerchant_conduct\t-1.5\n过期\tpublic_safety\t1\n"
        ));
        let found = corrected.decide(["过期"], false);
        assert_eq!(found.category, Category::PublicSafety);
    }

    #[test]
    fn a_bad_line_is_named() {
        for (tsv, says) in [
            ("垃圾\tweather\t1", "line 1: \"weather\" is not a category"),
            ("垃圾\tother\t1\n垃圾\tother", "line 2: expected"),
            ("垃圾\tother\tmany", "line 1: \"many\" is not a number"),
            ("@review_below\t2", "line 1: the threshold must be 0 to 1"),
        ] {
            let error = Weights::parse(tsv).unwrap_err();
            assert!(error.starts_with(says), "{tsv:?}: {error}");
        }
    }

    #[test]
    fn the_file_reads_back_as_written() {
        let model = weights(SMALL);
        assert_eq!(weights(&model.to_tsv("shipped")), model);
    }

    #[test]
    fn training_learns_the_words_of_each_category_and_centres_the_shared_ones() {
        let labelled = [
            (vec!["楼道", "垃圾", "臭"], Category::EnvironmentSanitation),
            (
                vec!["垃圾", "没人", "清运"],
                Category::EnvironmentSanitation,
            ),
            (vec!["楼道", "灯", "不亮"], Category::PropertyRenovation),
            (vec!["灯", "坏", "没人"], Category::PropertyRenovation),
        ];
        let training = Training {
            min_texts: 2,
            ..Training::default()
        };
        let model = train(labelled, &weights(""), training);
        let rubbish = model.terms["垃圾"];
        assert!(rubbish[index(Category::EnvironmentSanitation)] > 0.5);
        assert!(rubbish[index(Category::PropertyRenovation)] < 0.0);
        // In both categories once each: the same weight for both.
        let stairwell = model.terms["楼道"];
        assert!(
            (stairwell[index(Category::EnvironmentSanitation)]
                - stairwell[index(Category::PropertyRenovation)])
            .abs()
                < 1e-9
        );
        // Seen in fewer texts than `min_texts`: not kept.
        assert!(!model.terms.contains_key("臭"));
        assert_eq!(
            model.decide(["灯", "坏"], false).category,
            Category::PropertyRenovation
        );
    }
}
