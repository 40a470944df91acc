//! Driver for the OmniVision OV7725 VGA camera sensor (the camera of the OpenMV Cam H7), over its
//! SCCB control bus, generic over any [`embedded_hal::i2c::I2c`] bus (taken by value, given back
//! by [`Ov7725::release`]).
//!
//! It configures the sensor for what the expression camera needs: a QVGA (320x240) YUV 4:2:2 frame
//! whose Y bytes are the gray image, automatic exposure, gain and white balance. Every register it
//! writes is read back, so a sensor that does not answer or does not keep its settings is reported
//! instead of delivering garbage frames.
//!
//! SCCB is I2C without acknowledged reads and without repeated starts: a register read is a
//! one-byte write (the register address) followed by a separate one-byte read.
//!
//! ```no_run
//! # fn demo<B: embedded_hal::i2c::I2c, D: embedded_hal::delay::DelayNs>(bus: B, delay: &mut D) {
//! let mut cam = ov7725::Ov7725::new(bus);
//! match cam.init(delay) {
//!     Ok(id) => { /* id.pid == 0x77 */ }
//!     Err(e) => { /* camera absent, wrong chip, or a register did not stick */ }
//! }
//! let bus = cam.release();
//! # }
//! ```
#![no_std]

pub mod regs;

use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::I2c;

/// The sensor's 7-bit SCCB address (0x42 for writes, 0x43 for reads on the wire).
pub const ADDRESS: u8 = 0x21;
/// Product ID high byte (register PID) of every OV7725.
pub const PID: u8 = 0x77;
/// Manufacturer ID of OmniVision (registers MIDH:MIDL).
pub const MANUFACTURER: u16 = 0x7FA2;

/// Output frame: width and height in pixels, 2 bytes per pixel (YUYV).
pub const WIDTH: usize = 320;
/// See [`WIDTH`].
pub const HEIGHT: usize = 240;
/// Bytes of one YUV 4:2:2 frame.
pub const FRAME_BYTES: usize = WIDTH * HEIGHT * 2;

/// What the sensor says it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SensorId {
    /// Product ID (0x77 for the OV7725).
    pub pid: u8,
    /// Version (0x21 on the parts seen in OpenMV cameras).
    pub ver: u8,
    /// Manufacturer ID (0x7FA2, OmniVision).
    pub manufacturer: u16,
}

/// Why the sensor could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error<E> {
    /// The bus transfer failed: no sensor answering at [`ADDRESS`] (NACK), or a bus fault.
    Bus(E),
    /// A sensor answered, but it is not an OV7725.
    WrongChip(SensorId),
    /// A written register read back a different value: the sensor did not keep its settings.
    Verify { reg: u8, wrote: u8, read: u8 },
}

impl<E: core::fmt::Debug> core::fmt::Display for Error<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Bus(e) => write!(f, "SCCB bus error (camera absent or not answering): {e:?}"),
            Error::WrongChip(id) => write!(
                f,
                "not an OV7725: PID {:#04x} VER {:#04x} MID {:#06x} (expected PID {:#04x})",
                id.pid, id.ver, id.manufacturer, PID
            ),
            Error::Verify { reg, wrote, read } => write!(
                f,
                "register {reg:#04x} reads {read:#04x} after writing {wrote:#04x}"
            ),
        }
    }
}

/// The OV7725 on an SCCB/I2C bus.
pub struct Ov7725<B> {
    bus: B,
}

impl<B: I2c> Ov7725<B> {
    /// Takes the bus; nothing is sent until [`Ov7725::init`] or [`Ov7725::identify`].
    pub fn new(bus: B) -> Self {
        Ov7725 { bus }
    }

    /// Gives the bus back.
    pub fn release(self) -> B {
        self.bus
    }

    /// Reads one register (SCCB: address write, stop, one-byte read).
    ///
    /// # Errors
    /// [`Error::Bus`] when the transfer fails.
    pub fn read(&mut self, reg: u8) -> Result<u8, Error<B::Error>> {
        self.bus.write(ADDRESS, &[reg]).map_err(Error::Bus)?;
        let mut v = [0u8];
        self.bus.read(ADDRESS, &mut v).map_err(Error::Bus)?;
        Ok(v[0])
    }

    /// Writes one register.
    ///
    /// # Errors
    /// [`Error::Bus`] when the transfer fails.
    pub fn write(&mut self, reg: u8, value: u8) -> Result<(), Error<B::Error>> {
        self.bus.write(ADDRESS, &[reg, value]).map_err(Error::Bus)
    }

    /// Reads the identity registers and checks that this is an OV7725.
    ///
    /// # Errors
    /// [`Error::Bus`] when nothing answers, [`Error::WrongChip`] for another sensor.
    pub fn identify(&mut self) -> Result<SensorId, Error<B::Error>> {
        let id = SensorId {
            pid: self.read(regs::PID)?,
            ver: self.read(regs::VER)?,
            manufacturer: u16::from_be_bytes([self.read(regs::MIDH)?, self.read(regs::MIDL)?]),
        };
        if id.pid != PID || id.manufacturer != MANUFACTURER {
            return Err(Error::WrongChip(id));
        }
        Ok(id)
    }

    /// Resets the sensor's registers, checks its identity, loads [`regs::QVGA_YUV`] and verifies
    /// every value by reading it back.
    ///
    /// # Errors
    /// [`Error::Bus`], [`Error::WrongChip`] or [`Error::Verify`].
    pub fn init(&mut self, delay: &mut impl DelayNs) -> Result<SensorId, Error<B::Error>> {
        let id = self.identify()?;
        self.write(regs::COM7, regs::COM7_RESET)?;
        // The datasheet asks for 1 ms after a software reset; give the sensor a margin.
        delay.delay_ms(5);
        for &(reg, value) in regs::QVGA_YUV {
            self.write(reg, value)?;
        }
        for &(reg, wrote) in regs::QVGA_YUV {
            let read = self.read(reg)?;
            if read != wrote {
                return Err(Error::Verify { reg, wrote, read });
            }
        }
        // Let automatic exposure settle over a few frames before the first capture.
        delay.delay_ms(300);
        Ok(id)
    }

    /// Mirrors the image left-right and/or flips it upside down (COM3 bits 6 and 7).
    ///
    /// # Errors
    /// [`Error::Bus`].
    pub fn set_orientation(&mut self, mirror: bool, flip: bool) -> Result<(), Error<B::Error>> {
        let mut com3 = self.read(regs::COM3)? & !(regs::COM3_MIRROR | regs::COM3_VFLIP);
        if mirror {
            com3 |= regs::COM3_MIRROR;
        }
        if flip {
            com3 |= regs::COM3_VFLIP;
        }
        self.write(regs::COM3, com3)
    }
}

/// Which byte of each 2-byte YUV 4:2:2 pair carries luma: 0 for YUYV, 1 for UYVY.
///
/// The sensor's byte order depends on COM3's swap bit and on how the capture unit latches the
/// first byte; rather than trust both, the firmware measures it on the first frame: luma varies
/// across a scene, chroma stays near 128. Returns the phase whose bytes have the larger spread
/// (sum of absolute differences between neighbouring samples of the same phase).
pub fn luma_phase(yuyv: &[u8]) -> usize {
    let mut spread = [0u64; 2];
    for (phase, s) in spread.iter_mut().enumerate() {
        let mut prev: Option<u8> = None;
        for pair in yuyv.chunks_exact(4) {
            let v = pair[phase];
            if let Some(p) = prev {
                *s += u64::from(v.abs_diff(p));
            }
            prev = Some(v);
        }
    }
    usize::from(spread[1] > spread[0])
}

#[cfg(test)]
mod tests;
