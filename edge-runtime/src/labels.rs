//! The seven FER-2013 expression classes, in the model's output order.

/// Number of expression classes the model scores.
pub const CLASS_COUNT: usize = 7;

/// An expression class. The discriminant is the index of the class in the model's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Emotion {
    Angry = 0,
    Disgust = 1,
    Fear = 2,
    Happy = 3,
    Neutral = 4,
    Sad = 5,
    Surprise = 6,
}

impl Emotion {
    /// All classes in output order (alphabetical, as Kaggle's folders sort).
    pub const ALL: [Emotion; CLASS_COUNT] = [
        Emotion::Angry,
        Emotion::Disgust,
        Emotion::Fear,
        Emotion::Happy,
        Emotion::Neutral,
        Emotion::Sad,
        Emotion::Surprise,
    ];

    /// Index in the model output.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The class at output index `i`, if any.
    pub const fn from_index(i: usize) -> Option<Emotion> {
        if i < CLASS_COUNT {
            Some(Self::ALL[i])
        } else {
            None
        }
    }

    /// Canonical lower-case name (the folder name of Kaggle's FER-2013 layout).
    pub const fn name(self) -> &'static str {
        match self {
            Emotion::Angry => "angry",
            Emotion::Disgust => "disgust",
            Emotion::Fear => "fear",
            Emotion::Happy => "happy",
            Emotion::Neutral => "neutral",
            Emotion::Sad => "sad",
            Emotion::Surprise => "surprise",
        }
    }

    /// The other spelling used by another popular Kaggle copy (disgusted, fearful, surprised).
    pub const fn alternate_name(self) -> &'static str {
        match self {
            Emotion::Disgust => "disgusted",
            Emotion::Fear => "fearful",
            Emotion::Surprise => "surprised",
            other => other.name(),
        }
    }

    /// The folder names this class is read from, for messages: `angry`, `disgust or disgusted`.
    #[cfg(feature = "std")]
    pub fn folder_names(self) -> std::string::String {
        if self.alternate_name() == self.name() {
            self.name().into()
        } else {
            std::format!("{} or {}", self.name(), self.alternate_name())
        }
    }

    /// The expression's colour as the three channels of an RGB LED, each on or off: angry red,
    /// disgust green, fear magenta, happy yellow, neutral white, sad blue, surprise cyan. The
    /// board's LED and edge-cli's annotated pictures show the same colours.
    pub const fn colour(self) -> (bool, bool, bool) {
        match self {
            Emotion::Angry => (true, false, false),
            Emotion::Disgust => (false, true, false),
            Emotion::Fear => (true, false, true),
            Emotion::Happy => (true, true, false),
            Emotion::Neutral => (true, true, true),
            Emotion::Sad => (false, false, true),
            Emotion::Surprise => (false, true, true),
        }
    }

    /// Parses a class folder name in either spelling, ignoring ASCII case.
    pub fn from_folder_name(name: &str) -> Option<Emotion> {
        Self::ALL.into_iter().find(|e| {
            name.eq_ignore_ascii_case(e.name()) || name.eq_ignore_ascii_case(e.alternate_name())
        })
    }

    /// The class of the original `fer2013.csv` `emotion` column:
    /// 0 Angry, 1 Disgust, 2 Fear, 3 Happy, 4 Sad, 5 Surprise, 6 Neutral.
    pub const fn from_csv_code(code: u8) -> Option<Emotion> {
        match code {
            0 => Some(Emotion::Angry),
            1 => Some(Emotion::Disgust),
            2 => Some(Emotion::Fear),
            3 => Some(Emotion::Happy),
            4 => Some(Emotion::Sad),
            5 => Some(Emotion::Surprise),
            6 => Some(Emotion::Neutral),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_round_trip_and_names_parse() {
        for (i, e) in Emotion::ALL.into_iter().enumerate() {
            assert_eq!(e.index(), i);
            assert_eq!(Emotion::from_index(i), Some(e));
            assert_eq!(Emotion::from_folder_name(e.name()), Some(e));
            assert_eq!(Emotion::from_folder_name(e.alternate_name()), Some(e));
        }
        assert_eq!(
            Emotion::from_folder_name("Surprised"),
            Some(Emotion::Surprise)
        );
        assert_eq!(Emotion::from_folder_name("contempt"), None);
        assert_eq!(Emotion::from_index(7), None);
    }

    #[test]
    fn csv_codes_follow_kaggle_order() {
        assert_eq!(Emotion::from_csv_code(4), Some(Emotion::Sad));
        assert_eq!(Emotion::from_csv_code(6), Some(Emotion::Neutral));
        assert_eq!(Emotion::from_csv_code(7), None);
    }
}
