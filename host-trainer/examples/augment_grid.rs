//! Writes a grid of augmented training faces (the v2 recipe's distortions) to a PNG, to look at
//! what the network is trained on: `cargo run --release -p host-trainer --example augment_grid
//! -- <FER-2013 folder> <out.png>`. Each row is one face: the original, then 7 draws.

use std::path::PathBuf;

use anyhow::{Context, Result};
use fer_dataset::data::{self, BadImages, PIXELS, SIDE};
use fer_dataset::rng::Rng;
use host_trainer::augment::push_distorted;
use host_trainer::recipe::Recipe;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let data_dir = PathBuf::from(
        args.next()
            .context("usage: augment_grid <data> <out.png>")?,
    );
    let out = PathBuf::from(
        args.next()
            .context("usage: augment_grid <data> <out.png>")?,
    );
    let ds = data::load(&data_dir, BadImages::Fail)?;
    let distort = Recipe::v2().distort.context("the v2 recipe distorts")?;
    let (rows, cols) = (8, 8);
    let mut img = image::GrayImage::new((cols * SIDE) as u32, (rows * SIDE) as u32);
    let mut rng = Rng::new(1);
    for r in 0..rows {
        let sample = &ds.samples[(r * 3001) % ds.samples.len()];
        for c in 0..cols {
            let mut px = Vec::with_capacity(PIXELS);
            if c == 0 {
                host_trainer::augment::push_plain(&sample.pixels, &mut px);
            } else {
                push_distorted(&sample.pixels, true, &distort, &mut rng, &mut px);
            }
            for (i, v) in px.iter().enumerate() {
                let (x, y) = (c * SIDE + i % SIDE, r * SIDE + i / SIDE);
                img.put_pixel(x as u32, y as u32, image::Luma([(v * 255.0).round() as u8]));
            }
        }
    }
    img.save(&out)
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!("wrote {}", out.display());
    Ok(())
}
