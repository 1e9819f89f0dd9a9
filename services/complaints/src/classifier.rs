//! The classifier as the service runs it: the segmenter (jieba, its
//! dictionary plus every term of the weights) around the pure decision rule
//! of [`domain::classification`](crate::domain::classification), and the
//! weights file reloaded when it changes.
//!
//! The shipped weights (`classifier/weights.tsv`) are trained by `make
//! train-classify` from the corpus's training split and the curated terms
//! (`classifier/terms.tsv`); `SHEQU_CLASSIFIER_FILE` names an operator's file
//! instead, read at start (a bad file stops the start) and again whenever it
//! changes (a bad file is then logged and the weights in force are kept).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, SystemTime};

use jieba_rs::Jieba;

use crate::domain::classification::{Classification, Training, Weights, train};
use crate::domain::corpus::{self, Labelled, Split};

/// The weights shipped with the service.
pub const SHIPPED: &str = include_str!("../classifier/weights.tsv");

/// The curated terms training starts from.
pub const CURATED: &str = include_str!("../classifier/terms.tsv");

/// The segmenter with its dictionary, loaded once a process (≈0.2 s).
fn dictionary() -> &'static Jieba {
    static JIEBA: OnceLock<Jieba> = OnceLock::new();
    JIEBA.get_or_init(Jieba::new)
}

/// Segmentation and weights together.
pub struct Classifier {
    jieba: Jieba,
    weights: Weights,
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier").finish_non_exhaustive()
    }
}

impl Classifier {
    /// A classifier over `weights`: each of their terms is cut as one word
    /// (a term the dictionary alone would split, as 燃气味 into 燃气 and 味,
    /// is added to it; terms it cuts whole are left as they are, so the
    /// words around them are cut as in training).
    pub fn new(weights: Weights) -> Self {
        let default = dictionary();
        let mut jieba = default.clone();
        for term in weights.terms() {
            if !term.starts_with('@') && words(default, term) != [term] {
                jieba.add_word(term, None, None);
            }
        }
        Self { jieba, weights }
    }

    /// The classifier over the shipped weights.
    pub fn shipped() -> Self {
        Self::new(Weights::parse(SHIPPED).expect("the shipped weights parse (tested)"))
    }

    /// The words of `text` that can be evidence: those with a letter of any
    /// script in them (not punctuation, spaces or numbers).
    pub fn words<'t>(&self, text: &'t str) -> Vec<&'t str> {
        words(&self.jieba, text)
    }

    /// The category proposed for `text`.
    pub fn classify(&self, text: &str, names_a_merchant: bool) -> Classification {
        self.weights.decide(self.words(text), names_a_merchant)
    }
}

fn words<'t>(jieba: &Jieba, text: &'t str) -> Vec<&'t str> {
    jieba
        .cut(text, true)
        .into_iter()
        .filter(|word| word.chars().any(char::is_alphabetic))
        .collect()
}

/// The classifier in force, swapped when its file changes.
#[derive(Debug, Clone)]
pub struct Classifiers {
    current: Arc<RwLock<Arc<Classifier>>>,
    file: Option<PathBuf>,
}

impl Classifiers {
    /// The shipped weights, or those of `file` (errors name the file and line).
    pub fn load(file: Option<&Path>) -> Result<Self, String> {
        let classifier = match file {
            None => Classifier::shipped(),
            Some(path) => Classifier::new(read(path)?),
        };
        Ok(Self {
            current: Arc::new(RwLock::new(Arc::new(classifier))),
            file: file.map(Path::to_path_buf),
        })
    }

    /// The classifier in force now.
    pub fn current(&self) -> Arc<Classifier> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Watches the file (when there is one) every `every`, and swaps in its
    /// weights when it has changed and parses; a bad file is logged and the
    /// weights in force stay.
    pub async fn watch(self, every: Duration, shutdown: tokio_util::sync::CancellationToken) {
        let Some(path) = self.file.clone() else {
            return;
        };
        let mut seen = modified(&path);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
            let now = modified(&path);
            if now == seen {
                continue;
            }
            seen = now;
            let read_path = path.clone();
            match tokio::task::spawn_blocking(move || read(&read_path).map(Classifier::new)).await {
                Ok(Ok(classifier)) => {
                    *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(classifier);
                    tracing::info!(file = %path.display(), "classifier weights reloaded");
                }
                Ok(Err(error)) => tracing::error!(
                    %error,
                    "classifier weights not reloaded; the weights in force stay"
                ),
                Err(error) => tracing::error!(%error, "classifier reload failed"),
            }
        }
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn read(path: &Path) -> Result<Weights, String> {
    let tsv = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Weights::parse(&tsv).map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads every `*.jsonl` file of the corpus directory (errors name the file
/// and line), sorted by id so training does not depend on the file system.
pub fn read_corpus(dir: &Path) -> Result<Vec<Labelled>, String> {
    let mut texts = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().is_some_and(|ext| ext == "jsonl") {
            let jsonl = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
            texts.extend(corpus::parse(&jsonl).map_err(|e| format!("{}: {e}", path.display()))?);
        }
    }
    texts.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(texts)
}

/// The weights `make train-classify` ships: the curated terms plus what the
/// corpus's training split teaches (the held-out split is never seen).
pub fn train_shipped(corpus: &[Labelled]) -> Result<Weights, String> {
    let curated = Weights::parse(CURATED).map_err(|e| format!("classifier/terms.tsv: {e}"))?;
    // Cut as the curated terms alone would have it.
    let segmenter = Classifier::new(curated.clone());
    let labelled = corpus
        .iter()
        .filter(|text| text.split == Split::Train)
        .map(|text| (segmenter.words(&text.text), text.category));
    Ok(train(labelled, &curated, Training::default()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::kinds::Category;

    #[test]
    fn the_shipped_weights_are_what_training_on_the_corpus_gives() {
        let corpus = read_corpus(&Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")).unwrap();
        let trained = train_shipped(&corpus).unwrap();
        let shipped = Weights::parse(SHIPPED).unwrap();
        // The file holds weights to two decimals.
        let trained = Weights::parse(&trained.to_tsv("")).unwrap();
        assert!(
            trained == shipped,
            "classifier/weights.tsv is stale: run `make train-classify`"
        );
    }

    #[test]
    fn residents_words_are_read_for_their_meaning() {
        let classifier = Classifier::shipped();
        for (text, category) in [
            ("楼道里的灭火器都过期好几年了", Category::PublicSafety),
            ("自来水发黄 烧开一层渣", Category::MunicipalFacilities),
            (
                "楼下烧烤店油烟天天往俺家窗户里灌",
                Category::MerchantConduct,
            ),
            (
                "俺爹八十多了一个人住 做不了饭 想让社区给送饭",
                Category::ElderlyDisabilityServices,
            ),
        ] {
            let found = classifier.classify(text, false);
            assert_eq!(found.category, category, "{text}: {}", found.classified_by);
        }
    }
}
