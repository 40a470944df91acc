//! The OpenMV Cam H7 firmware builds for thumbv7em-none-eabihf and fits the STM32H743VI with
//! margin: flash (vector table, code, read-only data with the embedded model, initialised data),
//! the AXI SRAM (data, bss, uninit, plus the stack reserve) and the D2 SRAM (the CNN face
//! detector's arena) are read from the ELF's section table.
//! Needs the thumbv7em-none-eabihf target (rust-toolchain.toml lists it).

use object::{Object, ObjectSection};

/// STM32H743VI flash.
const FLASH: u64 = 2 * 1024 * 1024;
/// The AXI SRAM the firmware's memory.x gives it.
const RAM: u64 = 512 * 1024;
/// The D2 domain's SRAM1-3, which holds the CNN face detector's arena (memory.x).
const D2_SRAM: u64 = 288 * 1024;
/// Stack kept free below the top of RAM (cortex-m-rt puts the stack there).
const STACK_RESERVE: u64 = 64 * 1024;
/// Share of each memory the firmware may use: room for the face detector and larger models.
const MAX_SHARE_PERCENT: u64 = 75;

#[test]
fn openmv_h7_firmware_fits_the_stm32h743_with_margin() {
    let out = fer_checks::cargo_firmware("openmv-h7", "build");
    assert!(
        out.status.success(),
        "the board firmware does not build:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let elf_path =
        fer_checks::firmware_target().join("thumbv7em-none-eabihf/release/fer-openmv-h7");
    let bytes = std::fs::read(&elf_path).expect("firmware ELF");
    let elf = object::File::parse(&*bytes).expect("an ELF file");

    let mut flash = 0u64;
    let mut ram = 0u64;
    let mut d2 = 0u64;
    let mut table = String::new();
    for s in elf.sections() {
        let name = s.name().unwrap_or("?").to_string();
        // Debug and defmt sections are not loaded: they sit at address 0, outside both ranges.
        if s.size() == 0 {
            continue;
        }
        let addr = s.address();
        let in_flash = (0x0800_0000..0x0800_0000 + FLASH).contains(&addr);
        let in_ram = (0x2400_0000..0x2400_0000 + RAM).contains(&addr);
        let in_d2 = (0x3000_0000..0x3000_0000 + D2_SRAM).contains(&addr);
        if name == ".data" {
            // Initialised data occupies RAM at run time and its image sits in flash.
            flash += s.size();
        }
        if in_flash {
            flash += s.size();
        }
        if in_ram {
            ram += s.size();
        }
        if in_d2 {
            d2 += s.size();
        }
        if in_flash || in_ram || in_d2 {
            table.push_str(&format!("{name:<14} {addr:#010x} {:>9}\n", s.size()));
        }
    }
    let ram_with_stack = ram + STACK_RESERVE;
    eprintln!(
        "{table}flash {flash} of {FLASH} bytes ({}%), RAM {ram} + {STACK_RESERVE} stack of {RAM} bytes ({}%), D2 SRAM {d2} of {D2_SRAM} bytes ({}%)",
        flash * 100 / FLASH,
        ram_with_stack * 100 / RAM,
        d2 * 100 / D2_SRAM
    );
    assert!(
        flash > 900_000,
        "the model is embedded: flash use {flash} bytes"
    );
    assert!(
        flash * 100 <= FLASH * MAX_SHARE_PERCENT,
        "flash use {flash} bytes is over {MAX_SHARE_PERCENT}% of {FLASH}"
    );
    assert!(
        ram_with_stack * 100 <= RAM * MAX_SHARE_PERCENT,
        "RAM use {ram} bytes + {STACK_RESERVE} stack is over {MAX_SHARE_PERCENT}% of {RAM}"
    );
    assert!(
        d2 > 200_000,
        "the CNN detector's arena is in the D2 SRAM: {d2} bytes there"
    );
    assert!(
        d2 * 100 <= D2_SRAM * MAX_SHARE_PERCENT,
        "D2 SRAM use {d2} bytes is over {MAX_SHARE_PERCENT}% of {D2_SRAM}"
    );
}
