//! `make eval-classify`: the classifier over the corpus's held-out split
//! (`services/complaints/corpus/*.jsonl`): accuracy, per-category precision
//! and recall, the confusion matrix and the share sent to review.

use std::path::Path;

use shequ_complaints::classifier::{Classifier, read_corpus};
use shequ_complaints::domain::corpus::{Evaluation, Split};
use shequ_complaints::domain::kinds::Category;

fn main() -> Result<(), String> {
    let texts = read_corpus(&Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus"))?;
    let classifier = Classifier::shipped();
    let heldout: Vec<_> = texts.iter().filter(|t| t.split == Split::Heldout).collect();
    let evaluation = Evaluation::of(heldout.iter().map(|t| {
        let found = classifier.classify(&t.text, false);
        (t.category, (!found.pending).then_some(found.category))
    }));
    println!(
        "classifier: shipped weights (classifier/weights.tsv)\ncorpus: {} texts, {} held out\n",
        texts.len(),
        heldout.len()
    );
    println!(
        "held-out: {:.1} % right of all, {:.1} % sent to review, {:.1} % right of those decided\n",
        evaluation.accuracy() * 100.0,
        evaluation.review_share() * 100.0,
        evaluation.decided_accuracy() * 100.0
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
