//! The RGB LED: a colour per expression, and blink codes for faults.

use edge_runtime::Emotion;
use embassy_stm32::gpio::{Level, Output, Speed};
use embassy_stm32::peripherals::{PC0, PC1, PC2};
use embassy_stm32::Peri;
use embassy_time::Timer;

/// Which of red, green, blue are lit.
#[derive(Clone, Copy, PartialEq, Eq, defmt::Format)]
pub struct Colour {
    pub r: bool,
    pub g: bool,
    pub b: bool,
}

pub const OFF: Colour = Colour {
    r: false,
    g: false,
    b: false,
};
pub const RED: Colour = Colour {
    r: true,
    g: false,
    b: false,
};

/// The colour shown for each expression ([`Emotion::colour`]).
pub fn colour_of(e: Emotion) -> Colour {
    let (r, g, b) = e.colour();
    Colour { r, g, b }
}

/// Fault blink codes: the number of red flashes in a group.
#[derive(Clone, Copy, PartialEq, Eq, defmt::Format)]
pub enum Fault {
    /// The camera does not answer on SCCB, or is not an OV7725.
    Camera = 2,
    /// The embedded model failed validation: no inference is run.
    Model = 3,
    /// Frame capture failed (DCMI overrun or error).
    Capture = 4,
}

/// The three LED pins, active low.
pub struct RgbLed<'d> {
    r: Output<'d>,
    g: Output<'d>,
    b: Output<'d>,
}

impl<'d> RgbLed<'d> {
    pub fn new(r: Peri<'d, PC0>, g: Peri<'d, PC1>, b: Peri<'d, PC2>) -> Self {
        let off = || (Level::High, Speed::Low);
        RgbLed {
            r: Output::new(r, off().0, off().1),
            g: Output::new(g, off().0, off().1),
            b: Output::new(b, off().0, off().1),
        }
    }

    pub fn show(&mut self, c: Colour) {
        let level = |on: bool| if on { Level::Low } else { Level::High };
        self.r.set_level(level(c.r));
        self.g.set_level(level(c.g));
        self.b.set_level(level(c.b));
    }

    /// One group of the fault's red flashes, then a pause (about 2 s in all).
    pub async fn blink(&mut self, fault: Fault) {
        for _ in 0..fault as u8 {
            self.show(RED);
            Timer::after_millis(150).await;
            self.show(OFF);
            Timer::after_millis(250).await;
        }
        Timer::after_millis(1000).await;
    }
}
