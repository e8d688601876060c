//! `Upstash-Retry-Delay` expressions: parsed once at publish into a flat postfix program and
//! evaluated with an explicit stack after each failed attempt.
//!
//! Flat on purpose: a tree of boxed nodes recurses once per node when it is evaluated and
//! when it is dropped, so a long flat expression (`1+1+…+1`, thousands of terms) overflowed
//! the stack even though the parser limits nesting. A program of instructions has neither
//! recursion; the parser bounds the input's size and nesting on top of that.

use std::fmt;

/// Longest expression accepted. Real ones are a few dozen characters
/// (`pow(2, retried) * 1000`); the bound keeps every stored message's program small.
pub const MAX_EXPR_LEN: usize = 1024;

/// Deepest nesting of parentheses, calls and signs the parser follows.
const MAX_DEPTH: usize = 64;

/// A parsed expression; evaluates to milliseconds.
#[derive(Clone, PartialEq)]
pub struct RetryExpr {
    source: Box<str>,
    program: Box<[Instr]>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Instr {
    Num(f64),
    Retried,
    Neg,
    Bin(Op),
    /// Applies the function to the top `argc` values.
    Call(Func, u32),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Func {
    Pow,
    Sqrt,
    Abs,
    Exp,
    Floor,
    Ceil,
    Round,
    Min,
    Max,
}

impl Func {
    fn by_name(name: &str) -> Option<Self> {
        Some(match name {
            "pow" => Self::Pow,
            "sqrt" => Self::Sqrt,
            "abs" => Self::Abs,
            "exp" => Self::Exp,
            "floor" => Self::Floor,
            "ceil" => Self::Ceil,
            "round" => Self::Round,
            "min" => Self::Min,
            "max" => Self::Max,
            _ => return None,
        })
    }

    fn arity_ok(self, n: usize) -> bool {
        match self {
            Self::Pow => n == 2,
            Self::Min | Self::Max => n >= 2,
            _ => n == 1,
        }
    }

    fn arity_text(self) -> &'static str {
        match self {
            Self::Pow => "2 arguments",
            Self::Min | Self::Max => "at least 2 arguments",
            _ => "1 argument",
        }
    }
}

impl fmt::Debug for RetryExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl RetryExpr {
    /// Parses an expression; the error text explains what is wrong.
    pub fn parse(source: &str) -> Result<Self, String> {
        if source.len() > MAX_EXPR_LEN {
            return Err(format!(
                "expression is {} characters long; at most {MAX_EXPR_LEN} are accepted",
                source.len()
            ));
        }
        let mut p = Parser {
            s: source.as_bytes(),
            pos: 0,
            out: Vec::new(),
        };
        p.expr(0)?;
        p.skip_ws();
        if p.pos != p.s.len() {
            return Err(format!(
                "unexpected '{}' at position {}",
                p.rest_char(),
                p.pos + 1
            ));
        }
        Ok(Self {
            source: source.trim().into(),
            program: p.out.into_boxed_slice(),
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The expression's value with `retried` retries already performed; `None` when it is
    /// not a finite number.
    pub fn eval(&self, retried: u32) -> Option<f64> {
        let mut stack: Vec<f64> = Vec::with_capacity(8);
        for instr in self.program.iter() {
            match *instr {
                Instr::Num(v) => stack.push(v),
                Instr::Retried => stack.push(retried as f64),
                Instr::Neg => {
                    let a = stack.pop()?;
                    stack.push(-a);
                }
                Instr::Bin(op) => {
                    let b = stack.pop()?;
                    let a = stack.pop()?;
                    stack.push(match op {
                        Op::Add => a + b,
                        Op::Sub => a - b,
                        Op::Mul => a * b,
                        Op::Div => a / b,
                        Op::Rem => a % b,
                    });
                }
                Instr::Call(f, argc) => {
                    let args = stack.split_off(stack.len().checked_sub(argc as usize)?);
                    stack.push(apply(f, &args));
                }
            }
        }
        stack.pop().filter(|v| v.is_finite())
    }
}

fn apply(f: Func, v: &[f64]) -> f64 {
    match f {
        Func::Pow => v[0].powf(v[1]),
        Func::Sqrt => v[0].sqrt(),
        Func::Abs => v[0].abs(),
        Func::Exp => v[0].exp(),
        Func::Floor => v[0].floor(),
        Func::Ceil => v[0].ceil(),
        Func::Round => v[0].round(),
        Func::Min => v.iter().copied().fold(f64::INFINITY, f64::min),
        Func::Max => v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    }
}

/// Recursive descent that emits postfix code: operands first, then their operator. Only
/// nesting recurses (bounded by `MAX_DEPTH`); a run of terms is a loop.
struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    out: Vec<Instr>,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.pos).copied()
    }

    fn rest_char(&self) -> char {
        std::str::from_utf8(&self.s[self.pos..])
            .ok()
            .and_then(|r| r.chars().next())
            .unwrap_or('?')
    }

    fn guard(depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err("expression is nested too deeply".into());
        }
        Ok(())
    }

    fn expr(&mut self, depth: usize) -> Result<(), String> {
        Self::guard(depth)?;
        self.term(depth)?;
        while let Some(c @ (b'+' | b'-')) = self.peek() {
            self.pos += 1;
            self.term(depth)?;
            self.out
                .push(Instr::Bin(if c == b'+' { Op::Add } else { Op::Sub }));
        }
        Ok(())
    }

    fn term(&mut self, depth: usize) -> Result<(), String> {
        self.unary(depth)?;
        while let Some(c @ (b'*' | b'/' | b'%')) = self.peek() {
            self.pos += 1;
            self.unary(depth)?;
            self.out.push(Instr::Bin(match c {
                b'*' => Op::Mul,
                b'/' => Op::Div,
                _ => Op::Rem,
            }));
        }
        Ok(())
    }

    fn unary(&mut self, depth: usize) -> Result<(), String> {
        Self::guard(depth)?;
        match self.peek() {
            Some(b'-') => {
                self.pos += 1;
                self.unary(depth + 1)?;
                self.out.push(Instr::Neg);
                Ok(())
            }
            Some(b'+') => {
                self.pos += 1;
                self.unary(depth + 1)
            }
            _ => self.primary(depth),
        }
    }

    fn primary(&mut self, depth: usize) -> Result<(), String> {
        match self.peek() {
            None => Err("unexpected end of expression".into()),
            Some(b'(') => {
                self.pos += 1;
                self.expr(depth + 1)?;
                self.expect(b')')
            }
            Some(c) if c.is_ascii_digit() || c == b'.' => self.number(),
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => self.ident(depth),
            Some(_) => Err(format!(
                "unexpected '{}' at position {}",
                self.rest_char(),
                self.pos + 1
            )),
        }
    }

    fn number(&mut self) -> Result<(), String> {
        let start = self.pos;
        while self.pos < self.s.len()
            && (self.s[self.pos].is_ascii_digit() || self.s[self.pos] == b'.')
        {
            self.pos += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("");
        let v = text
            .parse::<f64>()
            .map_err(|_| format!("invalid number \"{text}\""))?;
        self.out.push(Instr::Num(v));
        Ok(())
    }

    fn ident(&mut self, depth: usize) -> Result<(), String> {
        let start = self.pos;
        while self.pos < self.s.len()
            && (self.s[self.pos].is_ascii_alphanumeric() || self.s[self.pos] == b'_')
        {
            self.pos += 1;
        }
        let name = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("");
        if self.peek() != Some(b'(') {
            if name == "retried" {
                self.out.push(Instr::Retried);
                return Ok(());
            }
            return Err(format!(
                "unknown variable \"{name}\" (only \"retried\" is available)"
            ));
        }
        let func = Func::by_name(name).ok_or_else(|| {
            format!("unknown function \"{name}\" (available: pow, sqrt, abs, exp, floor, ceil, round, min, max)")
        })?;
        self.pos += 1;
        let mut argc = 0usize;
        if self.peek() != Some(b')') {
            loop {
                self.expr(depth + 1)?;
                argc += 1;
                if self.peek() == Some(b',') {
                    self.pos += 1;
                } else {
                    break;
                }
            }
        }
        self.expect(b')')?;
        if !func.arity_ok(argc) {
            return Err(format!("{name}() takes {}, got {argc}", func.arity_text()));
        }
        // argc ≤ MAX_EXPR_LEN, so it fits.
        self.out.push(Instr::Call(func, argc as u32));
        Ok(())
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else if self.pos >= self.s.len() {
            Err(format!(
                "expected '{}' before the end of the expression",
                c as char
            ))
        } else {
            Err(format!(
                "expected '{}' at position {}",
                c as char,
                self.pos + 1
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval_at(src: &str, retried: u32) -> Option<f64> {
        RetryExpr::parse(src).expect(src).eval(retried)
    }

    #[test]
    fn precedence_associativity_and_signs() {
        assert_eq!(eval_at("10 - 4 - 3", 0), Some(3.0));
        assert_eq!(eval_at("2 + 3 * 4", 0), Some(14.0));
        assert_eq!(eval_at("(2 + 3) * 4", 0), Some(20.0));
        assert_eq!(eval_at("100 / 10 / 5", 0), Some(2.0));
        assert_eq!(eval_at("--3", 0), Some(3.0));
        assert_eq!(eval_at("-2 * -retried", 3), Some(6.0));
        assert_eq!(eval_at("max(1, 2, 3, min(9, 8))", 0), Some(8.0));
    }

    #[test]
    fn long_flat_expressions_are_refused_or_evaluated_without_recursion() {
        let terms = |n: usize, op: &str| vec!["1"; n].join(op);
        // ~60 KB, the shape that used to abort the process: refused by size.
        let err = RetryExpr::parse(&terms(30_000, "+")).unwrap_err();
        assert!(err.contains("at most 1024"), "{err}");
        // The longest accepted ones, of every flat shape, evaluate.
        assert_eq!(eval_at(&terms(512, "+"), 0), Some(512.0));
        assert_eq!(eval_at(&terms(512, "*"), 0), Some(1.0));
        let args = format!("max({})", terms(500, ","));
        assert_eq!(eval_at(&args, 0), Some(1.0));
        let signs = "-".repeat(60) + "1";
        assert_eq!(eval_at(&signs, 0), Some(1.0));
        assert!(RetryExpr::parse(&("-".repeat(100) + "1")).is_err());
    }
}
