//! OV7725 register addresses and the configuration table, from the OV7725 datasheet (register
//! map, "COM" control registers) and its implementation guide.

/// Gain control (AGC result).
pub const GAIN: u8 = 0x00;
/// Product ID high byte (0x77).
pub const PID: u8 = 0x0A;
/// Product version (0x21).
pub const VER: u8 = 0x0B;
/// COM3: bit 7 vertical flip, bit 6 horizontal mirror, bit 4 swap Y/UV order.
pub const COM3: u8 = 0x0C;
/// COM4: bits 7:6 PLL multiplier (01 = x4), bits 5:4 AEC window (00 = full).
pub const COM4: u8 = 0x0D;
/// CLKRC: internal clock = PLL output / ((CLKRC\[5:0\] + 1) · 2).
pub const CLKRC: u8 = 0x11;
/// COM7: bit 7 register reset, bit 6 QVGA, bits 1:0 output format (00 = YUV).
pub const COM7: u8 = 0x12;
/// COM8: automatic gain (bit 2), white balance (bit 1), exposure (bit 0), fast AEC (bit 7),
/// unlimited AEC step (bit 6).
pub const COM8: u8 = 0x13;
/// COM10: HREF / VSYNC / PCLK polarities (all default: VSYNC high pulse, HREF high, data on
/// falling PCLK edge, latched on the rising one).
pub const COM10: u8 = 0x15;
/// Sensor window: horizontal start (×4 pixels).
pub const HSTART: u8 = 0x17;
/// Sensor window: horizontal size (×4 pixels).
pub const HSIZE: u8 = 0x18;
/// Sensor window: vertical start (×2 lines).
pub const VSTRT: u8 = 0x19;
/// Sensor window: vertical size (×2 lines).
pub const VSIZE: u8 = 0x1A;
/// Manufacturer ID high byte (0x7F).
pub const MIDH: u8 = 0x1C;
/// Manufacturer ID low byte (0xA2).
pub const MIDL: u8 = 0x1D;
/// Output width, bits 9:2.
pub const HOUTSIZE: u8 = 0x29;
/// Output size low bits: width bits 1:0 (bits 1:0), height bit 0 (bit 2).
pub const EXHCH: u8 = 0x2A;
/// Output height, bits 8:1.
pub const VOUTSIZE: u8 = 0x2C;
/// Window low bits: HREF control.
pub const HREF: u8 = 0x32;

/// COM7 value that resets every register to its default.
pub const COM7_RESET: u8 = 0x80;
/// COM3 mirror bit.
pub const COM3_MIRROR: u8 = 0x40;
/// COM3 flip bit.
pub const COM3_VFLIP: u8 = 0x80;

/// QVGA (320x240), YUV 4:2:2, with a 12 MHz XCLK:
/// PLL x4 = 48 MHz, CLKRC /4 → 12 MHz internal clock, PCLK 12 MHz: 320 · 2 bytes per line at
/// under 30 frames/s, slow enough for the DCMI and its DMA with margin.
pub const QVGA_YUV: &[(u8, u8)] = &[
    (COM7, 0x40),   // QVGA, YUV
    (COM4, 0x41),   // PLL x4, full AEC window
    (CLKRC, 0x01),  // internal clock = 48 MHz / 4
    (COM3, 0x00),   // no flip/mirror, YUYV order
    (COM8, 0xCF),   // fast AEC, unlimited step, AGC + AWB + AEC on
    (COM10, 0x00),  // default sync polarities
    (HSTART, 0x3F), // sensor window for QVGA
    (HSIZE, 0x50),  // 80 · 4 = 320
    (VSTRT, 0x03),
    (VSIZE, 0x78),    // 120 · 2 = 240
    (HREF, 0x00),     // window low bits
    (HOUTSIZE, 0x50), // output 320 wide
    (VOUTSIZE, 0x78), // output 240 high
    (EXHCH, 0x00),    // no extra low bits
];
