//! The OpenMV Cam H7's clocks and wiring (from OpenMV's board definition, `OPENMV4`):
//!
//! | what                 | pins                                                        |
//! |----------------------|-------------------------------------------------------------|
//! | HSE crystal          | 12 MHz                                                      |
//! | camera SCCB (I2C1)   | SCL PB8, SDA PB9                                            |
//! | camera XCLK          | TIM1 CH1 on PA8, 12 MHz                                     |
//! | camera RESET / PWDN  | PA10 (active low) / PD7 (active high)                       |
//! | DCMI data D0..D7     | PC6 PC7 PE0 PE1 PE4 PB6 PE5 PE6                             |
//! | DCMI HSYNC/VSYNC/PCLK| PA4 / PB7 / PA6                                             |
//! | RGB LED (active low) | red PC0, green PC1, blue PC2                                |

use embassy_stm32::rcc::{
    AHBPrescaler, APBPrescaler, Hse, HseMode, Pll, PllDiv, PllMul, PllPreDiv, PllSource, Sysclk,
    VoltageScale,
};
use embassy_stm32::time::Hertz;
use embassy_stm32::Config;

/// Core clock after [`config`].
pub const CORE_HZ: u32 = 480_000_000;
/// Camera master clock.
pub const XCLK_HZ: u32 = 12_000_000;

/// 480 MHz core from the 12 MHz crystal: PLL1 12 / 3 · 240 / 2. AHB 240 MHz, every APB 120 MHz
/// (timers 240 MHz), VOS0 as the datasheet requires above 400 MHz, LDO supply (the H743 has no
/// SMPS).
pub fn config() -> Config {
    let mut config = Config::default();
    let rcc = &mut config.rcc;
    rcc.hse = Some(Hse {
        freq: Hertz(12_000_000),
        mode: HseMode::Oscillator,
    });
    rcc.pll1 = Some(Pll {
        source: PllSource::HSE,
        prediv: PllPreDiv::DIV3,
        mul: PllMul::MUL240,
        fracn: None,
        divp: Some(PllDiv::DIV2),
        divq: Some(PllDiv::DIV20),
        divr: None,
    });
    rcc.sys = Sysclk::PLL1_P;
    rcc.d1c_pre = AHBPrescaler::DIV1;
    rcc.ahb_pre = AHBPrescaler::DIV2;
    rcc.apb1_pre = APBPrescaler::DIV2;
    rcc.apb2_pre = APBPrescaler::DIV2;
    rcc.apb3_pre = APBPrescaler::DIV2;
    rcc.apb4_pre = APBPrescaler::DIV2;
    rcc.voltage_scale = VoltageScale::Scale0;
    config
}
