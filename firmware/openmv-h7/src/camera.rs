//! The OV7725 on the DCMI: master clock, power and reset lines, SCCB set-up with retries, and
//! frame capture into a DMA buffer.

use embassy_stm32::dcmi;
use embassy_stm32::gpio::{Level, Output, OutputType, Speed};
use embassy_stm32::i2c::{self, I2c};
use embassy_stm32::mode::Blocking;
use embassy_stm32::peripherals::TIM1;
use embassy_stm32::time::Hertz;
use embassy_stm32::timer::low_level::CountingMode;
use embassy_stm32::timer::simple_pwm::{PwmPin, SimplePwm};
use embassy_stm32::Peri;
use embassy_time::{Delay, Timer};
use ov7725::Ov7725;

use crate::board::XCLK_HZ;
use crate::dma_cache::DmaBuffer;
use crate::led::{Fault, RgbLed};

/// 32-bit words of one QVGA YUV 4:2:2 frame.
pub const FRAME_WORDS: usize = ov7725::FRAME_BYTES / 4;
/// A frame buffer the DCMI's DMA fills.
pub type Frame = DmaBuffer<FRAME_WORDS>;

/// The camera's control lines and clock, kept alive while the camera runs.
pub struct Power<'d> {
    _xclk: SimplePwm<'d, TIM1>,
    reset: Output<'d>,
    _pwdn: Output<'d>,
}

impl<'d> Power<'d> {
    /// Starts the 12 MHz XCLK on PA8 (TIM1 CH1, 50 % duty), powers the sensor up (PWDN low) and
    /// holds it in reset.
    pub fn on(
        tim: Peri<'d, TIM1>,
        xclk: Peri<'d, embassy_stm32::peripherals::PA8>,
        reset: Peri<'d, embassy_stm32::peripherals::PA10>,
        pwdn: Peri<'d, embassy_stm32::peripherals::PD7>,
    ) -> Self {
        let pin = PwmPin::new(xclk, OutputType::PushPull);
        let mut pwm = SimplePwm::new(
            tim,
            Some(pin),
            None,
            None,
            None,
            Hertz(XCLK_HZ),
            CountingMode::EdgeAlignedUp,
        );
        {
            let mut ch1 = pwm.ch1();
            ch1.set_duty_cycle_fraction(1, 2);
            ch1.enable();
        }
        Power {
            _xclk: pwm,
            reset: Output::new(reset, Level::Low, Speed::Low),
            _pwdn: Output::new(pwdn, Level::Low, Speed::Low),
        }
    }

    /// Pulses RESET: low 10 ms, then high and 10 ms for the sensor to wake.
    pub async fn reset(&mut self) {
        self.reset.set_low();
        Timer::after_millis(10).await;
        self.reset.set_high();
        Timer::after_millis(10).await;
    }
}

/// The SCCB bus: I2C1 on PB8/PB9 at 100 kHz, blocking (a few hundred bytes at start-up).
pub fn sccb<'d>(
    i2c: Peri<'d, embassy_stm32::peripherals::I2C1>,
    scl: Peri<'d, embassy_stm32::peripherals::PB8>,
    sda: Peri<'d, embassy_stm32::peripherals::PB9>,
) -> I2c<'d, Blocking, i2c::Master> {
    let mut cfg = i2c::Config::default();
    cfg.frequency = Hertz(100_000);
    I2c::new_blocking(i2c, scl, sda, cfg)
}

/// Resets and configures the sensor until it answers: each failure is logged with its reason,
/// blinks the camera fault code and is retried after a fresh hardware reset.
pub async fn bring_up<'d>(
    power: &mut Power<'d>,
    cam: &mut Ov7725<I2c<'d, Blocking, i2c::Master>>,
    led: &mut RgbLed<'_>,
) -> ov7725::SensorId {
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        power.reset().await;
        match cam.init(&mut Delay) {
            Ok(id) => {
                defmt::info!(
                    "camera: OV7725 PID {=u8:#x} VER {=u8:#x}, QVGA YUV422 (attempt {})",
                    id.pid,
                    id.ver,
                    attempt
                );
                return id;
            }
            Err(e) => {
                match e {
                    ov7725::Error::Bus(kind) => defmt::error!(
                        "camera: no answer on SCCB (I2C1 PB8/PB9, address 0x21): {}; check the \
                         sensor module is seated. Retrying (attempt {})",
                        defmt::Debug2Format(&kind),
                        attempt
                    ),
                    ov7725::Error::WrongChip(id) => defmt::error!(
                        "camera: not an OV7725 ({}); this firmware drives the OV7725 module only",
                        id
                    ),
                    ov7725::Error::Verify { reg, wrote, read } => defmt::error!(
                        "camera: register {=u8:#x} reads {=u8:#x} after writing {=u8:#x}; retrying",
                        reg,
                        read,
                        wrote
                    ),
                }
                led.blink(Fault::Camera).await;
            }
        }
    }
}

/// DCMI configuration for the OV7725: the defaults match the sensor (VSYNC high between frames,
/// HREF high on valid data, data latched on the rising PCLK edge).
pub fn dcmi_config() -> dcmi::Config {
    dcmi::Config::default()
}
