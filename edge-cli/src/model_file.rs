//! The model: embedded at build time from `models/`, or read from `--model`.

use std::borrow::Cow;
use std::path::Path;

use anyhow::Result;
use edge_runtime::Model;
use fer_dataset::safe_read::Kind;

/// The published int8 model, embedded in the binary.
pub static EMBEDDED: &[u8] = include_bytes!("../../models/fer_cnn.int8.bin");

/// The model file's bytes.
///
/// # Errors
/// An unreadable `--model` file.
pub fn load_bytes(path: Option<&Path>) -> Result<Cow<'static, [u8]>> {
    match path {
        None => Ok(Cow::Borrowed(EMBEDDED)),
        Some(p) => Ok(Cow::Owned(fer_dataset::safe_read::read(p, Kind::Model)?)),
    }
}

/// Validates the model, naming the file in the error.
///
/// # Errors
/// Whatever edge-runtime finds wrong with the file.
pub fn parse<'a>(bytes: &'a [u8], path: Option<&Path>) -> Result<Model<'a>> {
    Model::from_bytes(bytes).map_err(|e| {
        let name = path.map_or_else(
            || "the embedded model".to_string(),
            |p| p.display().to_string(),
        );
        anyhow::anyhow!("{name} is not a valid int8 model: {e}")
    })
}
