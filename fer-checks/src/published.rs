//! The published files the detector and pipeline checks load together, each read once: the LBP
//! cascade, the CNN face detector and the int8 classifier of `models/`.

use edge_runtime::detect::cnn::file::CnnDetector;
use edge_runtime::detect::Cascade;
use edge_runtime::Model;

use crate::artifact;

/// The bytes of `models/face_lbp.cascade`, `models/face_yunet_s.det` and
/// `models/fer_cnn.int8.bin`; each accessor parses its file (they borrow from here).
pub struct Published {
    cascade: Vec<u8>,
    detector: Vec<u8>,
    model: Vec<u8>,
}

impl Published {
    /// Reads the three files (panics naming the file that cannot be read).
    pub fn read() -> Self {
        Self {
            cascade: artifact("face_lbp.cascade"),
            detector: artifact("face_yunet_s.det"),
            model: artifact("fer_cnn.int8.bin"),
        }
    }

    /// The LBP frontal-face cascade.
    pub fn cascade(&self) -> Cascade<'_> {
        Cascade::from_bytes(&self.cascade).expect("models/face_lbp.cascade")
    }

    /// The CNN face detector (YuNet-s, int8).
    pub fn detector(&self) -> CnnDetector<'_> {
        CnnDetector::from_bytes(&self.detector).expect("models/face_yunet_s.det")
    }

    /// The int8 expression classifier.
    pub fn model(&self) -> Model<'_> {
        Model::from_bytes(&self.model).expect("models/fer_cnn.int8.bin")
    }
}
