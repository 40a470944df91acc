//! Grouping overlapping hits into faces, as OpenCV's `groupRectangles(rects, minNeighbors,
//! eps = 0.2)` does, in integers and in place.

use super::Face;

/// Whether two hits belong together: every edge within `eps · (min w + min h) / 2` with eps 0.2.
fn similar(a: &Face, b: &Face) -> bool {
    let delta = (a.w.min(b.w) + a.h.min(b.h)) / 10;
    let close = |p: u32, q: u32| p.abs_diff(q) <= delta;
    close(a.x, b.x) && close(a.y, b.y) && close(a.x + a.w, b.x + b.w) && close(a.y + a.h, b.y + b.h)
}

/// Groups `hits` (reordered, their `neighbours` field used as scratch) and writes the faces with
/// more than `min_neighbours` hits to `out`, largest first. Returns (faces written, faces that
/// did not fit `out`).
pub(super) fn group(hits: &mut [Face], min_neighbours: u32, out: &mut [Face]) -> (usize, usize) {
    let n = hits.len();
    // Union-find over hit indices, the parent index stored in `neighbours`.
    for (i, h) in hits.iter_mut().enumerate() {
        h.neighbours = i as u32;
    }
    fn root(hits: &mut [Face], mut i: usize) -> usize {
        while hits[i].neighbours as usize != i {
            let parent = hits[i].neighbours as usize;
            hits[i].neighbours = hits[parent].neighbours; // path halving
            i = parent;
        }
        i
    }
    for i in 0..n {
        for j in 0..i {
            if similar(&hits[i], &hits[j]) {
                let (a, b) = (root(hits, i), root(hits, j));
                if a != b {
                    hits[a.max(b)].neighbours = a.min(b) as u32;
                }
            }
        }
    }
    // Sort by cluster root so each cluster is contiguous, then average each run.
    for i in 0..n {
        let r = root(hits, i);
        hits[i].neighbours = r as u32;
    }
    hits.sort_unstable_by_key(|h| h.neighbours);
    let mut clusters = 0usize;
    let mut i = 0;
    while i < n {
        let label = hits[i].neighbours;
        let mut j = i;
        let (mut sx, mut sy, mut sw, mut sh) = (0u64, 0u64, 0u64, 0u64);
        while j < n && hits[j].neighbours == label {
            sx += u64::from(hits[j].x);
            sy += u64::from(hits[j].y);
            sw += u64::from(hits[j].w);
            sh += u64::from(hits[j].h);
            j += 1;
        }
        let count = (j - i) as u64;
        let avg = |v: u64| ((2 * v + count) / (2 * count)) as u32;
        // Clusters are written to the front of `hits` (index `clusters` ≤ `i`: never overwrites
        // a hit not yet read).
        hits[clusters] = Face {
            x: avg(sx),
            y: avg(sy),
            w: avg(sw),
            h: avg(sh),
            neighbours: count as u32,
        };
        clusters += 1;
        i = j;
    }
    let clusters = &mut hits[..clusters];
    // Keep clusters with enough hits that are not inside a stronger one.
    let mut written = 0;
    let mut lost = 0;
    clusters.sort_unstable_by(|a, b| {
        (b.w * b.h)
            .cmp(&(a.w * a.h))
            .then(b.neighbours.cmp(&a.neighbours))
    });
    for i in 0..clusters.len() {
        let r = clusters[i];
        if r.neighbours <= min_neighbours {
            continue;
        }
        let inside_stronger = clusters.iter().enumerate().any(|(j, o)| {
            if j == i || o.neighbours <= min_neighbours {
                return false;
            }
            let (dx, dy) = (o.w / 5, o.h / 5);
            i != j
                && r.x + dx >= o.x
                && r.y + dy >= o.y
                && r.x + r.w <= o.x + o.w + dx
                && r.y + r.h <= o.y + o.h + dy
                && (o.neighbours > 3.max(r.neighbours) || r.neighbours < 3)
        });
        if inside_stronger {
            continue;
        }
        if written < out.len() {
            out[written] = r;
            written += 1;
        } else {
            lost += 1;
        }
    }
    (written, lost)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(x: u32, y: u32, s: u32) -> Face {
        Face {
            x,
            y,
            w: s,
            h: s,
            neighbours: 1,
        }
    }

    #[test]
    fn overlapping_hits_become_one_face_with_their_average_box() {
        let mut hits = [
            f(100, 100, 50),
            f(102, 98, 50),
            f(98, 101, 52),
            f(101, 100, 48),
            f(300, 10, 30), // alone: too few neighbours
        ];
        let mut out = [Face::EMPTY; 4];
        let (n, lost) = group(&mut hits, 3, &mut out);
        assert_eq!((n, lost), (1, 0));
        assert_eq!(
            out[0],
            Face {
                x: 100,
                y: 100,
                w: 50,
                h: 50,
                neighbours: 4
            }
        );
    }

    #[test]
    fn two_faces_largest_first_and_output_capacity() {
        let mut hits = [f(10, 10, 30); 5]
            .into_iter()
            .chain([f(200, 50, 80); 5])
            .collect::<std::vec::Vec<_>>();
        let mut out = [Face::EMPTY; 2];
        assert_eq!(group(&mut hits, 3, &mut out), (2, 0));
        assert_eq!((out[0].w, out[1].w), (80, 30));
        let mut one = [Face::EMPTY; 1];
        let mut hits2 = [f(10, 10, 30); 5]
            .into_iter()
            .chain([f(200, 50, 80); 5])
            .collect::<std::vec::Vec<_>>();
        assert_eq!(group(&mut hits2, 3, &mut one), (1, 1));
    }

    #[test]
    fn a_small_face_inside_a_strong_one_is_dropped() {
        let mut hits = std::vec![f(100, 100, 100); 8];
        hits.extend([f(120, 120, 40); 4]);
        let mut out = [Face::EMPTY; 4];
        assert_eq!(group(&mut hits, 3, &mut out).0, 1);
        assert_eq!(out[0].w, 100);
    }

    #[test]
    fn no_hits_no_faces() {
        let mut out = [Face::EMPTY; 4];
        assert_eq!(group(&mut [], 3, &mut out), (0, 0));
    }

    #[test]
    fn iou() {
        let a = f(0, 0, 10);
        assert_eq!(a.iou_milli(&a), 1000);
        assert_eq!(a.iou_milli(&f(5, 0, 10)), 333);
        assert_eq!(a.iou_milli(&f(20, 20, 10)), 0);
    }
}
