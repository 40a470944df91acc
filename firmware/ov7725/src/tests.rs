//! The driver against a register-file model of the sensor's SCCB interface: what reaches the
//! bus, identity checks, verification, and the errors a user meets when the camera is absent.

extern crate std;
use std::vec::Vec;

use embedded_hal::i2c::{self, ErrorKind, ErrorType, NoAcknowledgeSource, Operation};

use super::*;

/// An SCCB device: 256 registers, an address pointer set by a one-byte write, reads from the
/// pointer. `stuck` registers ignore writes (a sensor that does not keep a setting); `absent`
/// NACKs every transfer. Every transaction is logged.
struct SensorBus {
    regs: [u8; 256],
    pointer: u8,
    absent: bool,
    stuck: Option<u8>,
    log: Vec<(bool, Vec<u8>)>,
}

impl SensorBus {
    fn ov7725() -> Self {
        let mut regs = [0u8; 256];
        regs[usize::from(regs::PID)] = 0x77;
        regs[usize::from(regs::VER)] = 0x21;
        regs[usize::from(regs::MIDH)] = 0x7F;
        regs[usize::from(regs::MIDL)] = 0xA2;
        SensorBus {
            regs,
            pointer: 0,
            absent: false,
            stuck: None,
            log: Vec::new(),
        }
    }
}

impl ErrorType for SensorBus {
    type Error = ErrorKind;
}

impl i2c::I2c for SensorBus {
    fn transaction(&mut self, addr: u8, ops: &mut [Operation<'_>]) -> Result<(), ErrorKind> {
        if self.absent || addr != ADDRESS {
            return Err(ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address));
        }
        assert_eq!(
            ops.len(),
            1,
            "SCCB has no repeated start: one operation per transfer"
        );
        match &mut ops[0] {
            Operation::Write(bytes) => {
                self.log.push((true, bytes.to_vec()));
                self.pointer = bytes[0];
                if let [reg, value] = bytes[..] {
                    let reset = reg == regs::COM7 && value & regs::COM7_RESET != 0;
                    if reset {
                        let keep = SensorBus::ov7725().regs;
                        self.regs = keep;
                    } else if self.stuck != Some(reg) {
                        self.regs[usize::from(reg)] = value;
                    }
                }
            }
            Operation::Read(buf) => {
                self.log.push((false, Vec::new()));
                for b in buf.iter_mut() {
                    *b = self.regs[usize::from(self.pointer)];
                }
            }
        }
        Ok(())
    }
}

struct NoDelay(u32);
impl DelayNs for NoDelay {
    fn delay_ns(&mut self, ns: u32) {
        self.0 = self.0.saturating_add(ns / 1_000_000);
    }
}

#[test]
fn init_identifies_resets_and_loads_the_qvga_yuv_table() {
    let mut cam = Ov7725::new(SensorBus::ov7725());
    let mut delay = NoDelay(0);
    let id = cam.init(&mut delay).expect("init");
    assert_eq!(
        id,
        SensorId {
            pid: 0x77,
            ver: 0x21,
            manufacturer: 0x7FA2
        }
    );
    let bus = cam.release();
    for &(reg, value) in regs::QVGA_YUV {
        assert_eq!(bus.regs[usize::from(reg)], value, "register {reg:#04x}");
    }
    // The reset comes before the table, and the table after the identity reads.
    let writes: Vec<&Vec<u8>> = bus
        .log
        .iter()
        .filter(|(w, b)| *w && b.len() == 2)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(writes[0], &[regs::COM7, regs::COM7_RESET]);
    assert_eq!(writes.len(), 1 + regs::QVGA_YUV.len());
    assert!(delay.0 >= 5, "waited after the reset");
}

#[test]
fn the_table_describes_a_qvga_yuv_frame() {
    let get = |r: u8| {
        regs::QVGA_YUV
            .iter()
            .find(|(reg, _)| *reg == r)
            .map(|&(_, v)| v)
            .expect("register in table")
    };
    let width = usize::from(get(regs::HOUTSIZE)) * 4 + usize::from(get(regs::EXHCH) & 0x3);
    let height = usize::from(get(regs::VOUTSIZE)) * 2 + usize::from((get(regs::EXHCH) >> 2) & 1);
    assert_eq!((width, height), (WIDTH, HEIGHT));
    assert_eq!(get(regs::COM7) & 0x03, 0, "YUV output");
    assert_eq!(get(regs::COM7) & 0x40, 0x40, "QVGA");
    assert_eq!(FRAME_BYTES, 320 * 240 * 2);
}

#[test]
fn an_absent_camera_is_a_bus_error() {
    let mut bus = SensorBus::ov7725();
    bus.absent = true;
    let mut cam = Ov7725::new(bus);
    assert_eq!(
        cam.init(&mut NoDelay(0)),
        Err(Error::Bus(ErrorKind::NoAcknowledge(
            NoAcknowledgeSource::Address
        )))
    );
    let msg = std::format!("{}", cam.init(&mut NoDelay(0)).unwrap_err());
    assert!(msg.contains("camera absent"), "{msg}");
}

#[test]
fn another_sensor_is_refused_before_anything_is_written() {
    let mut bus = SensorBus::ov7725();
    bus.regs[usize::from(regs::PID)] = 0x76; // an OV7670
    bus.regs[usize::from(regs::VER)] = 0x73;
    let mut cam = Ov7725::new(bus);
    let err = cam.init(&mut NoDelay(0)).unwrap_err();
    assert_eq!(
        err,
        Error::WrongChip(SensorId {
            pid: 0x76,
            ver: 0x73,
            manufacturer: 0x7FA2
        })
    );
    assert!(std::format!("{err}").contains("not an OV7725"));
    let bus = cam.release();
    assert!(
        bus.log.iter().all(|(w, b)| !*w || b.len() == 1),
        "no register written"
    );
}

#[test]
fn a_register_that_does_not_keep_its_value_is_reported() {
    let mut bus = SensorBus::ov7725();
    bus.stuck = Some(regs::CLKRC);
    let mut cam = Ov7725::new(bus);
    assert_eq!(
        cam.init(&mut NoDelay(0)),
        Err(Error::Verify {
            reg: regs::CLKRC,
            wrote: 0x01,
            read: 0x00
        })
    );
}

#[test]
fn orientation_sets_only_its_two_bits() {
    let mut bus = SensorBus::ov7725();
    bus.regs[usize::from(regs::COM3)] = 0x10;
    let mut cam = Ov7725::new(bus);
    cam.set_orientation(true, false).unwrap();
    assert_eq!(cam.read(regs::COM3).unwrap(), 0x50);
    cam.set_orientation(false, true).unwrap();
    assert_eq!(cam.read(regs::COM3).unwrap(), 0x90);
}

#[test]
fn luma_phase_finds_the_varying_bytes() {
    // A horizontal ramp in Y, chroma flat around 128.
    let yuyv: Vec<u8> = (0..320u32)
        .flat_map(|x| [(x * 255 / 319) as u8, 128 + (x % 2) as u8])
        .collect();
    assert_eq!(luma_phase(&yuyv), 0);
    let uyvy: Vec<u8> = yuyv.chunks_exact(2).flat_map(|p| [p[1], p[0]]).collect();
    assert_eq!(luma_phase(&uyvy), 1);
}
