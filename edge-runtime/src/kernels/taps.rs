//! The nine taps of a 3x3 window (or kernel) as five int16 pairs, the layout the M7's
//! dual-multiply instructions take (`SMLAD`: `lo·lo + hi·hi`): `(t0, t1) (t3, t4) (t6, t7)
//! (t2, t5) (t8, 0)`. The detector's stem and depthwise kernels pack windows and weights so.

/// The nine taps packed as five int16 pairs (each tap must fit in i16).
#[inline(always)]
pub fn pack_taps(t: [i32; 9]) -> [u32; 5] {
    let pack = |lo: i32, hi: i32| (lo as u16 as u32) | ((hi as u16 as u32) << 16);
    [
        pack(t[0], t[1]),
        pack(t[3], t[4]),
        pack(t[6], t[7]),
        pack(t[2], t[5]),
        pack(t[8], 0),
    ]
}

/// `Σ window·kernel` over two packed windows of taps, by definition (the five pairs' halves
/// multiplied as int16): what five `SMLAD`s compute.
pub fn packed_dot(window: [u32; 5], kernel: [u32; 5]) -> i32 {
    let half = |v: u32, top: bool| i32::from((if top { v >> 16 } else { v }) as u16 as i16);
    window.iter().zip(kernel).fold(0, |acc, (&x, k)| {
        acc + half(x, false) * half(k, false) + half(x, true) * half(k, true)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_dot_is_the_nine_products() {
        let x: [i32; 9] = [255, 0, 17, -128, 127, 3, 200, -5, 9];
        let k: [i32; 9] = [-128, 127, 1, -1, 64, -77, 5, 0, -3];
        let want: i32 = x.iter().zip(k).map(|(&a, b)| a * b).sum();
        assert_eq!(packed_dot(pack_taps(x), pack_taps(k)), want);
    }
}
