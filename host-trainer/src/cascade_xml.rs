//! OpenCV's cascade XML (the `opencv_storage` format of `lbpcascade_*.xml`) to edge-runtime's
//! cascade file. Only boosted LBP stumps are read: the format of OpenCV's LBP face cascades.
//! Every problem names the element and what was expected.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use edge_runtime::detect::cascade::{CascadeSpec, WeakSpec};
use edge_runtime::detect::Feature;
use roxmltree::{Document, Node};

fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Result<Node<'a, 'i>> {
    node.children()
        .find(|c| c.has_tag_name(name))
        .ok_or_else(|| anyhow!("<{}> has no <{name}> element", node.tag_name().name()))
}

fn text<'a>(node: Node<'a, '_>, name: &str) -> Result<&'a str> {
    Ok(child(node, name)?.text().unwrap_or("").trim())
}

fn number<T: std::str::FromStr>(s: &str, what: &str) -> Result<T> {
    s.parse()
        .map_err(|_| anyhow!("{what}: expected a number, found {s:?}"))
}

fn items<'a, 'i>(node: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children().filter(|c| c.has_tag_name("_"))
}

/// The deepest element nesting a cascade file may have (the parser recurses per level).
const MAX_DEPTH: usize = 64;

/// How deep the elements of `xml` nest, counted without recursion: `<a>` opens a level, `</a>`
/// closes one, `<a/>`, `<?…?>`, `<!--…-->`, `<![CDATA[…]]>` and `<!…>` leave it. Enough to refuse
/// a deep file before the parser sees it; the parser still judges whether it is well-formed.
fn element_depth(xml: &str) -> usize {
    let b = xml.as_bytes();
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    let skip_to = |from: usize, end: &str| {
        xml[from..]
            .find(end)
            .map_or(b.len(), |k| from + k + end.len())
    };
    while let Some(k) = xml[i..].find('<') {
        let at = i + k;
        let rest = &xml[at..];
        i = if rest.starts_with("<!--") {
            skip_to(at, "-->")
        } else if rest.starts_with("<![CDATA[") {
            skip_to(at, "]]>")
        } else if rest.starts_with("<?") {
            skip_to(at, "?>")
        } else if rest.starts_with("<!") || rest.starts_with("</") {
            if rest.starts_with("</") {
                depth = depth.saturating_sub(1);
            }
            skip_to(at, ">")
        } else {
            let end = skip_to(at, ">");
            if !(end >= 2 && b[end - 2] == b'/') {
                depth += 1;
                deepest = deepest.max(depth);
            }
            end
        };
    }
    deepest
}

/// Parses an OpenCV LBP cascade from XML text.
///
/// # Errors
/// Not XML, not a cascade, not LBP/BOOST, trees deeper than stumps, or malformed numbers,
/// naming the stage, classifier or feature.
pub fn parse(xml: &str) -> Result<CascadeSpec> {
    let depth = element_depth(xml);
    if depth > MAX_DEPTH {
        bail!(
            "elements nested {depth} deep, more than the {MAX_DEPTH} a cascade can use (OpenCV's \
             nest 6 deep): not a cascade"
        );
    }
    let doc = Document::parse(xml).context("not well-formed XML")?;
    let root = doc.root_element();
    if !root.has_tag_name("opencv_storage") {
        bail!(
            "root element is <{}>, expected <opencv_storage>",
            root.tag_name().name()
        );
    }
    let cascade = root
        .children()
        .find(|c| c.is_element())
        .ok_or_else(|| anyhow!("<opencv_storage> is empty"))?;
    let stage_type = text(cascade, "stageType")
        .context("not a cascade in OpenCV's current format (old Haar files have no <stageType>)")?;
    if stage_type != "BOOST" {
        bail!("<stageType> is {stage_type:?}, expected BOOST");
    }
    let feature_type = text(cascade, "featureType")?;
    if feature_type != "LBP" {
        bail!(
            "<featureType> is {feature_type:?}: only LBP cascades are supported (OpenCV's lbpcascade_frontalface.xml)"
        );
    }
    let window_w: u16 = number(text(cascade, "width")?, "<width>")?;
    let window_h: u16 = number(text(cascade, "height")?, "<height>")?;
    let mut features = Vec::new();
    for (i, f) in items(child(cascade, "features")?).enumerate() {
        let v: Vec<&str> = text(f, "rect")?.split_whitespace().collect();
        if v.len() != 4 {
            bail!(
                "feature {i}: <rect> has {} numbers, expected 4 (x y w h)",
                v.len()
            );
        }
        let n = |k: usize, what: &str| number::<u8>(v[k], &format!("feature {i} {what}"));
        features.push(Feature {
            x: n(0, "x")?,
            y: n(1, "y")?,
            w: n(2, "w")?,
            h: n(3, "h")?,
        });
    }
    let mut stages = Vec::new();
    for (si, stage) in items(child(cascade, "stages")?).enumerate() {
        let threshold: f64 = number(
            text(stage, "stageThreshold")?,
            &format!("stage {si} <stageThreshold>"),
        )?;
        let mut weak = Vec::new();
        for (wi, w) in items(child(stage, "weakClassifiers")?).enumerate() {
            let at = || format!("stage {si} classifier {wi}");
            let nodes: Vec<&str> = text(w, "internalNodes")?.split_whitespace().collect();
            if nodes.len() != 11 {
                bail!(
                    "{}: <internalNodes> has {} numbers, expected 11 (a stump: left right feature and an 8-word subset)",
                    at(),
                    nodes.len()
                );
            }
            if nodes[0] != "0" || nodes[1] != "-1" {
                bail!(
                    "{}: a tree deeper than one split; only stumps are supported",
                    at()
                );
            }
            let feature: u16 = number(nodes[2], &format!("{} feature index", at()))?;
            let mut subset = [0u32; 8];
            for (k, s) in subset.iter_mut().enumerate() {
                *s = number::<i32>(nodes[3 + k], &format!("{} subset word {k}", at()))? as u32;
            }
            let leaves: Vec<f64> = text(w, "leafValues")?
                .split_whitespace()
                .map(|s| number(s, &format!("{} leaf", at())))
                .collect::<Result<_>>()?;
            let [a, b] = leaves[..] else {
                bail!(
                    "{}: <leafValues> has {} numbers, expected 2",
                    at(),
                    leaves.len()
                );
            };
            weak.push(WeakSpec {
                feature,
                subset,
                leaves: [a, b],
            });
        }
        stages.push((threshold, weak));
    }
    if let Ok(n) = text(cascade, "stageNum") {
        let declared: usize = number(n, "<stageNum>")?;
        if declared != stages.len() {
            bail!(
                "<stageNum> says {declared} stages, <stages> holds {}",
                stages.len()
            );
        }
    }
    Ok(CascadeSpec {
        window_w,
        window_h,
        features,
        stages,
    })
}

/// Converts `xml` to an edge-runtime cascade file at `out` (written atomically) and returns a
/// one-line summary.
///
/// # Errors
/// Unreadable input, anything [`parse`] refuses, or a cascade edge-runtime's validator refuses.
pub fn convert(xml: &Path, out: &Path) -> Result<String> {
    let text =
        fer_dataset::safe_read::read_to_string(xml, fer_dataset::safe_read::Kind::CascadeXml)?;
    let spec = parse(&text).with_context(|| format!("{}", xml.display()))?;
    let bytes = spec
        .encode()
        .map_err(|e| anyhow!("{}: {e}", xml.display()))?;
    fer_dataset::atomic_write::write_atomic(out, &bytes)?;
    let weak: usize = spec.stages.iter().map(|(_, w)| w.len()).sum();
    Ok(format!(
        "{}: {}x{} window, {} stages, {weak} weak classifiers, {} features -> {} ({} bytes)",
        xml.display(),
        spec.window_w,
        spec.window_h,
        spec.stages.len(),
        spec.features.len(),
        out.display(),
        bytes.len()
    ))
}
