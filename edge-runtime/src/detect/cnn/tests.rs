//! Each layer against its definition in real numbers: the int8 result is the real one rounded
//! (half up) onto the output's grid, saturated, for random maps with borders, odd sizes, both
//! signs of weights and the zero points at their extremes.

use super::ops::*;
use crate::kernels::cases::Cases;
use crate::requant::Stage;
use std::vec::Vec;

/// A stage for `q = round(acc · m_real) + zero` (after a ReLU when asked), as the quantizer
/// builds it: multiplier in Q31 normalized, rounding constant and zero point in the offset.
fn stage(m_real: f64, zero: i32) -> Stage {
    let mut n = 31u32;
    let mut m = m_real;
    while m.abs() < 0.5 {
        m *= 2.0;
        n += 1;
    }
    let m = (m * f64::from(1u32 << 31)).round() as i64;
    let m = m.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
    Stage {
        m,
        n,
        b: (i64::from(zero) << n) + (1i64 << (n - 1)),
    }
}

fn bytes_of(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn stages_of(v: &[Stage]) -> Vec<u8> {
    v.iter().flat_map(|s| s.to_le_bytes()).collect()
}

fn random_i8(cases: &mut Cases, n: usize) -> Vec<i8> {
    let mut b = std::vec![0u8; n];
    cases.fill(&mut b, true);
    b.into_iter().map(|x| x as i8).collect()
}

/// What the stage gives for a real accumulator `acc` (exactly representable here): the
/// expected int8 value.
fn expect(s: &Stage, acc: i64, relu: bool) -> i8 {
    let acc = if relu { acc.max(0) } else { acc };
    ((acc * i64::from(s.m) + s.b) >> s.n).clamp(-128, 127) as i8
}

#[test]
fn stem_pointwise_and_depthwise_are_their_definitions() {
    let mut cases = Cases::new();
    for (h, w, c) in [(5, 7, 3), (8, 8, 16), (1, 1, 4), (6, 9, 1)] {
        let cout = c + 1;
        let mut wb = std::vec![0u8; 9 * cout.max(c) * cout.max(c)];
        cases.fill(&mut wb, true);
        let bias: Vec<i32> = (0..cout.max(c)).map(|i| (i as i32 - 2) * 517).collect();
        let st: Vec<Stage> = (0..cout.max(c))
            .map(|i| {
                stage(
                    if i % 3 == 0 { -0.0021 } else { 0.0037 },
                    [-128, 0, 5][i % 3],
                )
            })
            .collect();
        for relu in [false, true] {
            // Stem on pixels 0-255.
            let mut pix = std::vec![0u8; h * w];
            cases.fill(&mut pix, true);
            let p = ConvParams {
                weights: &wb[..9 * cout],
                bias: &bytes_of(&bias[..cout]),
                stages: &stages_of(&st[..cout]),
                relu,
            };
            let o = MapShape::stem_output(h, w, cout);
            let mut out = std::vec![0i8; o.len()];
            stem(&pix, h, w, &p, &mut out);
            for oy in 0..o.h {
                for ox in 0..o.w {
                    for co in 0..cout {
                        let mut acc = i64::from(bias[co]);
                        for t in 0..9 {
                            let (y, x) = (2 * oy as i64 + t / 3 - 1, 2 * ox as i64 + t % 3 - 1);
                            if (0..h as i64).contains(&y) && (0..w as i64).contains(&x) {
                                acc += i64::from(pix[y as usize * w + x as usize])
                                    * i64::from(wb[co * 9 + t as usize] as i8);
                            }
                        }
                        assert_eq!(out[(oy * o.w + ox) * cout + co], expect(&st[co], acc, relu));
                    }
                }
            }
            // Pointwise and depthwise on an int8 map, zero points at both ends.
            for zero in [-128, 127, 3] {
                let s = MapShape { h, w, c };
                let x = random_i8(&mut cases, s.len());
                let p = ConvParams {
                    weights: &wb[..c * cout],
                    bias: &bytes_of(&bias[..cout]),
                    stages: &stages_of(&st[..cout]),
                    relu,
                };
                let mut out = std::vec![0i8; h * w * cout];
                let mut scratch = std::vec![0i8; pointwise_scratch(c)];
                pointwise(&x, c, zero, &p, &mut out, &mut scratch);
                for px in 0..h * w {
                    for co in 0..cout {
                        let acc = i64::from(bias[co])
                            + (0..c)
                                .map(|ci| {
                                    (i64::from(x[px * c + ci]) - i64::from(zero))
                                        * i64::from(wb[co * c + ci] as i8)
                                })
                                .sum::<i64>();
                        assert_eq!(out[px * cout + co], expect(&st[co], acc, relu), "pointwise");
                    }
                }
                let p = ConvParams {
                    weights: &wb[..9 * c],
                    bias: &bytes_of(&bias[..c]),
                    stages: &stages_of(&st[..c]),
                    relu,
                };
                let mut out = std::vec![0i8; s.len()];
                depthwise(&x, s, zero, &p, &mut out);
                for y in 0..h as i64 {
                    for xx in 0..w as i64 {
                        for ch in 0..c {
                            let mut acc = i64::from(bias[ch]);
                            for t in 0..9i64 {
                                let (iy, ix) = (y + t / 3 - 1, xx + t % 3 - 1);
                                if (0..h as i64).contains(&iy) && (0..w as i64).contains(&ix) {
                                    let v = x[(iy as usize * w + ix as usize) * c + ch];
                                    acc += (i64::from(v) - i64::from(zero))
                                        * i64::from(wb[ch * 9 + t as usize] as i8);
                                }
                            }
                            let got = out[(y as usize * w + xx as usize) * c + ch];
                            assert_eq!(got, expect(&st[ch], acc, relu), "depthwise");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn pool_upsample_and_add_are_their_definitions() {
    let mut cases = Cases::new();
    let s = MapShape { h: 5, w: 7, c: 3 };
    let x = random_i8(&mut cases, s.len());
    let at = |y: usize, xx: usize, c: usize| x[(y * s.w + xx) * s.c + c];
    let mut pooled = std::vec![0i8; 2 * 3 * 3];
    max_pool2(&x, s, &mut pooled);
    for (i, &v) in pooled.iter().enumerate() {
        let (c, px) = (i % 3, i / 3);
        let (oy, ox) = (px / 3, px % 3);
        let want = [(0, 0), (0, 1), (1, 0), (1, 1)]
            .iter()
            .map(|&(dy, dx)| at(2 * oy + dy, 2 * ox + dx, c))
            .max()
            .unwrap();
        assert_eq!(v, want);
    }
    let mut up = std::vec![0i8; 4 * s.len()];
    upsample2(&x, s, &mut up);
    for y in 0..2 * s.h {
        for xx in 0..2 * s.w {
            for c in 0..s.c {
                assert_eq!(up[(y * 2 * s.w + xx) * s.c + c], at(y / 2, xx / 2, c));
            }
        }
    }
    // Add with scales 0.05 and 0.013 into 0.04: within half a step of the real sum.
    let (sa, sb, so) = (0.05f64, 0.013f64, 0.04f64);
    let shift = 14 + 15;
    let p = AddParams {
        a_zero: -7,
        b_zero: 100,
        a_mul: (sa / so * f64::from(1 << 14)).round() as i32,
        b_mul: (sb / so * f64::from(1 << 14)).round() as i32,
        stage: Stage {
            m: 1 << 15,
            n: shift,
            b: (-3i64 << shift) + (1i64 << (shift - 1)),
        },
    };
    assert!(p.a_mul <= ADD_MUL_MAX && p.b_mul <= ADD_MUL_MAX);
    let y = random_i8(&mut cases, s.len());
    let mut sum = std::vec![0i8; s.len()];
    add(&x, &y, &p, &mut sum);
    for i in 0..s.len() {
        let real = (sa * f64::from(i32::from(x[i]) + 7) + sb * f64::from(i32::from(y[i]) - 100))
            / so
            - 3.0;
        let want = real.round().clamp(-128.0, 127.0);
        assert!(
            (f64::from(sum[i]) - want).abs() <= 1.0,
            "{} vs {real}",
            sum[i]
        );
    }
}
