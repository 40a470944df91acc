//! The documentation renders as written: in every Markdown file of the repository, code fences
//! are balanced (an odd one turns the rest of a page into code), and every relative link and
//! image points at a file or folder that exists.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    fer_test_support::workspace_dir()
}

/// Every `.md` file below `dir`, skipping build output, fuzzing corpora and hidden folders.
fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if p.is_dir() {
            if !(name.starts_with('.') || ["target", "corpus", "artifacts", "runs"].contains(&name))
            {
                markdown_files(&p, out);
            }
        } else if name.ends_with(".md") {
            out.push(p);
        }
    }
}

/// The targets of inline links and images (`[text](target)`, `![alt](target)`) outside code.
fn link_targets(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut in_fence = false;
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        // Drop inline code spans before looking for links.
        let plain: String = line
            .split('`')
            .enumerate()
            .filter(|(i, _)| i % 2 == 0)
            .map(|(_, s)| s)
            .collect::<Vec<_>>()
            .join(" ");
        let mut rest = plain.as_str();
        while let Some(k) = rest.find("](") {
            let after = &rest[k + 2..];
            let Some(end) = after.find(')') else { break };
            let target = after[..end].split_whitespace().next().unwrap_or("");
            out.push((n + 1, target.to_string()));
            rest = &after[end..];
        }
    }
    out
}

#[test]
fn fences_are_balanced_and_relative_links_resolve() {
    let root = repo();
    let mut files = Vec::new();
    markdown_files(&root, &mut files);
    assert!(files.len() >= 10, "found only {files:?}");
    let mut problems = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read");
        let shown = file
            .strip_prefix(&root)
            .unwrap_or(file)
            .display()
            .to_string();
        let fences = text
            .lines()
            .filter(|l| l.trim_start().starts_with("```"))
            .count();
        if fences % 2 != 0 {
            problems.push(format!("{shown}: {fences} code fences (odd)"));
        }
        for (line, target) in link_targets(&text) {
            let bare = target.split('#').next().unwrap_or("");
            if bare.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let base = file.parent().expect("folder");
            if !base.join(bare).exists() {
                problems.push(format!(
                    "{shown}:{line}: link to {target}, which does not exist"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_link_finder_sees_links_and_skips_code() {
    let text = "see [a](docs/a.md) and ![b](b.png#x)\n```\n[c](nope.md)\n```\n`[d](code.md)` [e](https://x)";
    let found: Vec<String> = link_targets(text).into_iter().map(|(_, t)| t).collect();
    assert_eq!(found, ["docs/a.md", "b.png#x", "https://x"]);
}
