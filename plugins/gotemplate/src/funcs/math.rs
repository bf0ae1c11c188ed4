//! Sprig's arithmetic (numeric.go): the integer family converts through cast.ToInt64 and returns
//! int64; the `…f` family works in decimal (shopspring/decimal) and returns float64.

use super::conv::{to_f64, to_i64};
use super::{CallContext, arity, at_least, int_arg};
use crate::value::Value;

type R = Result<Value, String>;

pub fn add(_: &mut CallContext, a: &[Value]) -> R {
    Ok(Value::Int64(
        a.iter().map(to_i64).fold(0i64, i64::wrapping_add),
    ))
}

pub fn add1(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    Ok(Value::Int64(to_i64(&a[0]).wrapping_add(1)))
}

pub fn sub(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 2)?;
    Ok(Value::Int64(to_i64(&a[0]).wrapping_sub(to_i64(&a[1]))))
}

pub fn mul(_: &mut CallContext, a: &[Value]) -> R {
    at_least(a, 1)?;
    Ok(Value::Int64(
        a.iter().map(to_i64).fold(1i64, i64::wrapping_mul),
    ))
}

pub fn div(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 2)?;
    let d = to_i64(&a[1]);
    if d == 0 {
        return Err("runtime error: integer divide by zero".into());
    }
    Ok(Value::Int64(to_i64(&a[0]).wrapping_div(d)))
}

pub fn modulo(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 2)?;
    let d = to_i64(&a[1]);
    if d == 0 {
        return Err("runtime error: integer divide by zero".into());
    }
    Ok(Value::Int64(to_i64(&a[0]).wrapping_rem(d)))
}

pub fn max(_: &mut CallContext, a: &[Value]) -> R {
    at_least(a, 1)?;
    Ok(Value::Int64(a.iter().map(to_i64).max().unwrap_or(0)))
}

pub fn min(_: &mut CallContext, a: &[Value]) -> R {
    at_least(a, 1)?;
    Ok(Value::Int64(a.iter().map(to_i64).min().unwrap_or(0)))
}

pub fn floor(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    Ok(Value::Float(to_f64(&a[0]).floor()))
}

pub fn ceil(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    Ok(Value::Float(to_f64(&a[0]).ceil()))
}

pub fn round(_: &mut CallContext, a: &[Value]) -> R {
    at_least(a, 2)?;
    let round_on = a.get(2).map_or(0.5, to_f64);
    let val = to_f64(&a[0]);
    let pow = 10f64.powf(int_arg(a, 1)? as f64);
    let digit = pow * val;
    let frac = digit.fract();
    let r = if frac >= round_on {
        digit.ceil()
    } else {
        digit.floor()
    };
    Ok(Value::Float(r / pow))
}

/// An exact decimal `mantissa × 10^-scale`, enough for Sprig's add/sub/mul of float64 inputs
/// (shopspring/decimal reads a float64 by its shortest decimal representation).
#[derive(Clone, Copy)]
struct Decimal {
    mantissa: i128,
    scale: u32,
}

impl Decimal {
    fn from_f64(f: f64) -> Option<Decimal> {
        if !f.is_finite() {
            return None;
        }
        let s = format!("{f:e}");
        let (mant, exp) = s.split_once('e')?;
        let exp: i32 = exp.parse().ok()?;
        let neg = mant.starts_with('-');
        let mant = mant.trim_start_matches('-');
        let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
        let digits = format!("{int}{frac}");
        let mut m: i128 = digits.parse().ok()?;
        let mut scale = frac.len() as i32 - exp;
        while scale < 0 {
            m = m.checked_mul(10)?;
            scale += 1;
        }
        if scale > 30 {
            return None;
        }
        Some(Decimal {
            mantissa: if neg { -m } else { m },
            scale: scale as u32,
        })
    }

    fn align(self, other: Decimal) -> Option<(i128, i128, u32)> {
        let scale = self.scale.max(other.scale);
        let a = self
            .mantissa
            .checked_mul(10i128.checked_pow(scale - self.scale)?)?;
        let b = other
            .mantissa
            .checked_mul(10i128.checked_pow(scale - other.scale)?)?;
        Some((a, b, scale))
    }

    fn to_f64(self) -> f64 {
        format!("{}e-{}", self.mantissa, self.scale)
            .parse()
            .unwrap_or(f64::NAN)
    }
}

/// Apply `op` in decimal when exact, else in float64.
fn decimal_op(a: f64, b: f64, op: char) -> f64 {
    let exact = (|| {
        let (x, y) = (Decimal::from_f64(a)?, Decimal::from_f64(b)?);
        match op {
            '+' | '-' => {
                let (p, q, scale) = x.align(y)?;
                let m = if op == '+' {
                    p.checked_add(q)?
                } else {
                    p.checked_sub(q)?
                };
                Some(Decimal { mantissa: m, scale }.to_f64())
            }
            '*' => Some(
                Decimal {
                    mantissa: x.mantissa.checked_mul(y.mantissa)?,
                    scale: x.scale + y.scale,
                }
                .to_f64(),
            ),
            // shopspring divides to 16 decimal places, rounding half away from zero.
            '/' if y.mantissa != 0 => {
                const PLACES: u32 = 16;
                let num = x
                    .mantissa
                    .checked_mul(10i128.checked_pow(y.scale + PLACES + 1)?)?;
                let den = y.mantissa.checked_mul(10i128.checked_pow(x.scale)?)?;
                let q = num / den;
                let rounded = (q + q.signum() * 5) / 10;
                Some(
                    Decimal {
                        mantissa: rounded,
                        scale: PLACES,
                    }
                    .to_f64(),
                )
            }
            _ => None,
        }
    })();
    let result = exact.unwrap_or(match op {
        '+' => a + b,
        '-' => a - b,
        '*' => a * b,
        _ => a / b,
    });
    // A decimal has no negative zero.
    if result == 0.0 { 0.0 } else { result }
}

fn fold_f(a: &[Value], start: f64, op: char) -> f64 {
    a.iter()
        .fold(start, |acc, v| decimal_op(acc, to_f64(v), op))
}

pub fn addf(_: &mut CallContext, a: &[Value]) -> R {
    Ok(Value::Float(fold_f(a, 0.0, '+')))
}

pub fn add1f(_: &mut CallContext, a: &[Value]) -> R {
    arity(a, 1)?;
    Ok(Value::Float(decimal_op(to_f64(&a[0]), 1.0, '+')))
}

pub fn subf(_: &mut CallContext, a: &[Value]) -> R {
    at_least(a, 1)?;
    Ok(Value::Float(fold_f(&a[1..], to_f64(&a[0]), '-')))
}

pub fn mulf(_: &mut CallContext, a: &[Value]) -> R {
    at_least(a, 1)?;
    Ok(Value::Float(fold_f(&a[1..], to_f64(&a[0]), '*')))
}

pub fn divf(_: &mut CallContext, a: &[Value]) -> R {
    at_least(a, 1)?;
    let mut acc = to_f64(&a[0]);
    for v in &a[1..] {
        let d = to_f64(v);
        if d == 0.0 {
            return Err("decimal division by 0".into());
        }
        acc = decimal_op(acc, d, '/');
    }
    // A decimal has no negative zero.
    Ok(Value::Float(if acc == 0.0 { 0.0 } else { acc }))
}

pub fn maxf(_: &mut CallContext, a: &[Value]) -> R {
    at_least(a, 1)?;
    Ok(Value::Float(a.iter().map(to_f64).fold(f64::MIN, f64::max)))
}

pub fn minf(_: &mut CallContext, a: &[Value]) -> R {
    at_least(a, 1)?;
    Ok(Value::Float(a.iter().map(to_f64).fold(f64::MAX, f64::min)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_arithmetic_is_exact_for_short_decimals() {
        assert_eq!(decimal_op(0.1, 0.2, '+'), 0.3);
        assert_eq!(decimal_op(1.1, 3.0, '*'), 3.3);
        assert_eq!(decimal_op(0.3, 0.1, '-'), 0.2);
        assert_eq!(decimal_op(2.5, 3.0, '/'), 0.8333333333333333);
        assert_eq!(decimal_op(2.0, 3.0, '/'), 0.6666666666666667);
    }
}
