//! `make eval-classify`: the classifier over the corpus's held-out split
//! (`services/complaints/corpus/*.jsonl`): accuracy, per-category precision
//! and recall, the confusion matrix and the share sent to review.

use std::path::Path;

use shequ_complaints::domain::classification::classify;
use shequ_complaints::domain::corpus::{self, Evaluation, Split};
use shequ_complaints::domain::kinds::Category;

fn main() -> Result<(), String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut texts = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().is_some_and(|ext| ext == "jsonl") {
            let jsonl = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
            texts.extend(corpus::parse(&jsonl).map_err(|e| format!("{}: {e}", path.display()))?);
        }
    }
    let heldout: Vec<_> = texts.iter().filter(|t| t.split == Split::Heldout).collect();
    let evaluation = Evaluation::of(
        heldout
            .iter()
            .map(|t| (t.category, Some(classify(&t.text, false).category))),
    );
    println!(
        "classifier: keyword rules (first keyword found)\ncorpus: {} texts, {} held out\n",
        texts.len(),
        heldout.len()
    );
    println!(
        "held-out accuracy {:.1} %, sent to review {:.1} %\n",
        evaluation.accuracy() * 100.0,
        evaluation.review_share() * 100.0
    );
    println!("{:<28} {:>9} {:>7}", "category", "precision", "recall");
    for category in Category::ALL {
        println!(
            "{:<28} {:>8.1}% {:>6.1}%",
            category.as_str(),
            evaluation.precision(*category) * 100.0,
            evaluation.recall(*category) * 100.0
        );
    }
    println!("\nconfusion (rows: label, columns: answer; last column: review)");
    let short = |category: &Category| category.as_str().chars().take(6).collect::<String>();
    print!("{:<28}", "");
    for category in Category::ALL {
        print!(" {:>6}", short(category));
    }
    println!(" {:>6}", "review");
    for label in Category::ALL {
        print!("{:<28}", label.as_str());
        for answer in Category::ALL.iter().map(|c| Some(*c)).chain([None]) {
            let n = evaluation
                .confusion
                .get(&(*label, answer))
                .copied()
                .unwrap_or(0);
            print!(" {n:>6}");
        }
        println!();
    }
    Ok(())
}
