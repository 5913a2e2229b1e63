//! A pickle reader that builds only what a PyTorch state dict is made of:
//! an OrderedDict, tensors (`torch._utils._rebuild_tensor_v2`,
//! `_rebuild_parameter`) over storages (`torch.FloatStorage`, ...), and the
//! plain values around them. A pickle is a program; this one runs none of
//! it: any other global is refused by name before anything is built, and
//! no opcode that calls or instantiates anything else is understood.

use std::collections::HashMap;

/// Element types of torch storages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    F64,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl DType {
    fn of_storage(name: &str) -> Option<DType> {
        Some(match name {
            "FloatStorage" => DType::F32,
            "DoubleStorage" => DType::F64,
            "HalfStorage" => DType::F16,
            "BFloat16Storage" => DType::BF16,
            "LongStorage" => DType::I64,
            "IntStorage" => DType::I32,
            "ShortStorage" => DType::I16,
            "CharStorage" => DType::I8,
            "ByteStorage" => DType::U8,
            "BoolStorage" => DType::Bool,
            _ => return None,
        })
    }

    pub fn size(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 | DType::I16 => 2,
            DType::I8 | DType::U8 | DType::Bool => 1,
        }
    }

    /// Element `i` of little-endian `bytes`, as f32.
    pub fn read(self, bytes: &[u8], i: usize) -> f32 {
        let at = |n: usize| &bytes[i * n..(i + 1) * n];
        match self {
            DType::F32 => f32::from_le_bytes(at(4).try_into().expect("4 bytes")),
            DType::F64 => f64::from_le_bytes(at(8).try_into().expect("8 bytes")) as f32,
            DType::F16 => f16_to_f32(u16::from_le_bytes(at(2).try_into().expect("2 bytes"))),
            DType::BF16 => f32::from_bits((u16::from_le_bytes(at(2).try_into().expect("2 bytes")) as u32) << 16),
            DType::I64 => i64::from_le_bytes(at(8).try_into().expect("8 bytes")) as f32,
            DType::I32 => i32::from_le_bytes(at(4).try_into().expect("4 bytes")) as f32,
            DType::I16 => i16::from_le_bytes(at(2).try_into().expect("2 bytes")) as f32,
            DType::I8 => at(1)[0] as i8 as f32,
            DType::U8 | DType::Bool => at(1)[0] as f32,
        }
    }
}

pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as i32;
    let frac = (h & 0x3ff) as u32;
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            // subnormal: normalize
            let mut e = -14i32;
            let mut f = f;
            while f & 0x400 == 0 {
                f <<= 1;
                e -= 1;
            }
            sign | (((e + 127) as u32) << 23) | ((f & 0x3ff) << 13)
        }
        (31, 0) => sign | 0x7f80_0000,
        (31, f) => sign | 0x7f80_0000 | (f << 13),
        (e, f) => sign | (((e - 15 + 127) as u32) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}

/// A storage a tensor views: its type, its key (the file holding it) and its size.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageRef {
    pub dtype: DType,
    pub key: String,
    pub numel: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    pub storage: StorageRef,
    pub offset: u64,
    pub size: Vec<u64>,
    pub stride: Vec<u64>,
}

/// The few callables a state dict's pickle names.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Global {
    OrderedDict,
    RebuildTensorV2,
    RebuildParameter,
    Storage(DType),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// An integer wider than 64 bits, little-endian two's complement.
    BigInt(Vec<u8>),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global(Global),
    Storage(StorageRef),
    Tensor(TensorRef),
}

impl Value {
    pub fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::BigInt(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
            Value::Global(_) => "class",
            Value::Storage(_) => "storage",
            Value::Tensor(_) => "tensor",
        }
    }

    /// Values inside, counted: what a copy of it costs.
    fn weight(&self) -> usize {
        match self {
            Value::Tuple(v) | Value::List(v) => 1 + v.iter().map(Value::weight).sum::<usize>(),
            Value::Dict(v) => 1 + v.iter().map(|(k, x)| k.weight() + x.weight()).sum::<usize>(),
            Value::Str(s) => 1 + s.len() / 64,
            Value::Bytes(b) | Value::BigInt(b) => 1 + b.len() / 64,
            Value::Tensor(t) => 1 + t.size.len(),
            _ => 1,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    #[error("the checkpoint asks for {0}, which a state dict never needs; refused (a pickle can run code)")]
    Refused(String),
    #[error("the checkpoint's pickle is damaged: {0}")]
    Damaged(String),
}

enum Item {
    Mark,
    V(Value),
}

/// Copies from the memo are bounded in total, so a small file cannot
/// build an enormous object by repetition.
const COPY_BUDGET: usize = 50_000_000;

/// Reads one pickle from `data` at `*pos` (advanced past its STOP).
pub fn load(data: &[u8], pos: &mut usize) -> Result<Value, Error> {
    let mut r = Reader { data, pos: *pos };
    let mut stack: Vec<Item> = Vec::new();
    let mut memo: HashMap<u32, Value> = HashMap::new();
    let mut copied = 0usize;
    let damaged = |what: &str| Error::Damaged(what.to_string());
    loop {
        let at = r.pos;
        let op = r.byte()?;
        match op {
            0x80 => {
                r.take(1)?; // PROTO
            }
            0x95 => {
                r.take(8)?; // FRAME: a size hint
            }
            b'.' => {
                *pos = r.pos;
                return pop(&mut stack);
            }
            b'(' => stack.push(Item::Mark),
            b')' => stack.push(Item::V(Value::Tuple(vec![]))),
            b']' => stack.push(Item::V(Value::List(vec![]))),
            b'}' => stack.push(Item::V(Value::Dict(vec![]))),
            b'N' => stack.push(Item::V(Value::None)),
            0x88 => stack.push(Item::V(Value::Bool(true))),
            0x89 => stack.push(Item::V(Value::Bool(false))),
            b'J' => stack.push(Item::V(Value::Int(i32::from_le_bytes(r.array()?) as i64))),
            b'K' => stack.push(Item::V(Value::Int(r.byte()? as i64))),
            b'M' => stack.push(Item::V(Value::Int(u16::from_le_bytes(r.array()?) as i64))),
            0x8a => {
                let n = r.byte()? as usize;
                let b = r.take(n)?;
                stack.push(Item::V(long(b)));
            }
            0x8b => {
                let n = u32::from_le_bytes(r.array()?) as usize;
                let b = r.take(n)?;
                stack.push(Item::V(long(b)));
            }
            b'G' => stack.push(Item::V(Value::Float(f64::from_be_bytes(r.array()?)))),
            b'X' => {
                let n = u32::from_le_bytes(r.array()?) as usize;
                stack.push(Item::V(Value::Str(r.string(n)?)));
            }
            0x8c => {
                let n = r.byte()? as usize;
                stack.push(Item::V(Value::Str(r.string(n)?)));
            }
            0x8d => {
                let n = usize::try_from(u64::from_le_bytes(r.array()?))
                    .map_err(|_| damaged("a string longer than memory"))?;
                stack.push(Item::V(Value::Str(r.string(n)?)));
            }
            b'T' => {
                let n = u32::from_le_bytes(r.array()?) as usize;
                stack.push(Item::V(Value::Str(String::from_utf8_lossy(r.take(n)?).into_owned())));
            }
            b'U' => {
                let n = r.byte()? as usize;
                stack.push(Item::V(Value::Str(String::from_utf8_lossy(r.take(n)?).into_owned())));
            }
            b'B' => {
                let n = u32::from_le_bytes(r.array()?) as usize;
                stack.push(Item::V(Value::Bytes(r.take(n)?.to_vec())));
            }
            b'C' => {
                let n = r.byte()? as usize;
                stack.push(Item::V(Value::Bytes(r.take(n)?.to_vec())));
            }
            b'c' => {
                let module = r.line()?;
                let name = r.line()?;
                stack.push(Item::V(Value::Global(global(&module, &name)?)));
            }
            0x93 => {
                let name = pop(&mut stack)?;
                let module = pop(&mut stack)?;
                let (Value::Str(module), Value::Str(name)) = (module, name) else {
                    return Err(damaged("STACK_GLOBAL without two strings"));
                };
                stack.push(Item::V(Value::Global(global(&module, &name)?)));
            }
            b'q' | b'r' | 0x94 => {
                let key = match op {
                    b'q' => r.byte()? as u32,
                    b'r' => u32::from_le_bytes(r.array()?),
                    _ => memo.len() as u32,
                };
                let top = match stack.last() {
                    Some(Item::V(v)) => v.clone(),
                    _ => return Err(damaged("memo of an empty stack")),
                };
                copied += top.weight();
                memo.insert(key, top);
            }
            b'h' | b'j' => {
                let key = if op == b'h' { r.byte()? as u32 } else { u32::from_le_bytes(r.array()?) };
                let v = memo.get(&key).ok_or_else(|| damaged(&format!("memo {key} used before it is set")))?.clone();
                copied += v.weight();
                stack.push(Item::V(v));
            }
            b't' => {
                let items = pop_to_mark(&mut stack)?;
                stack.push(Item::V(Value::Tuple(items)));
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                let mut items = (0..n).map(|_| pop(&mut stack)).collect::<Result<Vec<_>, _>>()?;
                items.reverse();
                stack.push(Item::V(Value::Tuple(items)));
            }
            b'a' => {
                let v = pop(&mut stack)?;
                match stack.last_mut() {
                    Some(Item::V(Value::List(l))) => l.push(v),
                    _ => return Err(damaged("APPEND to something that is not a list")),
                }
            }
            b'e' => {
                let items = pop_to_mark(&mut stack)?;
                match stack.last_mut() {
                    Some(Item::V(Value::List(l))) => l.extend(items),
                    _ => return Err(damaged("APPENDS to something that is not a list")),
                }
            }
            b's' => {
                let v = pop(&mut stack)?;
                let k = pop(&mut stack)?;
                set_items(&mut stack, vec![k, v])?;
            }
            b'u' => {
                let items = pop_to_mark(&mut stack)?;
                set_items(&mut stack, items)?;
            }
            b'R' => {
                let args = pop(&mut stack)?;
                let f = pop(&mut stack)?;
                stack.push(Item::V(reduce(f, args)?));
            }
            b'b' => {
                // BUILD sets an object's state; on a dict that is its
                // attributes (a state dict's `_metadata`): not needed.
                let _state = pop(&mut stack)?;
                if !matches!(stack.last(), Some(Item::V(Value::Dict(_)))) {
                    return Err(damaged("BUILD on something that is not a dict"));
                }
            }
            b'Q' => {
                let pid = pop(&mut stack)?;
                stack.push(Item::V(Value::Storage(storage(pid)?)));
            }
            0x81 | 0x92 | b'i' | b'o' | b'P' => {
                return Err(Error::Refused(format!("an object instance (pickle opcode 0x{op:02x} at byte {at})")));
            }
            _ => return Err(damaged(&format!("pickle opcode 0x{op:02x} at byte {at} is not one a state dict uses"))),
        }
        if copied > COPY_BUDGET {
            return Err(damaged("it copies more values than any state dict holds"));
        }
    }
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let end = end.ok_or_else(|| Error::Damaged("it ends inside a value (truncated?)".into()))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn byte(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }
    fn string(&mut self, n: usize) -> Result<String, Error> {
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| Error::Damaged("a string that is not UTF-8".into()))
    }
    fn line(&mut self) -> Result<String, Error> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .take(256)
            .position(|&b| b == b'\n')
            .ok_or_else(|| Error::Damaged("a global's name does not end".into()))?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(s)
    }
}

fn long(b: &[u8]) -> Value {
    if b.len() <= 8 {
        let mut buf = if b.last().is_some_and(|&x| x & 0x80 != 0) { [0xffu8; 8] } else { [0u8; 8] };
        buf[..b.len()].copy_from_slice(b);
        Value::Int(i64::from_le_bytes(buf))
    } else {
        Value::BigInt(b.to_vec())
    }
}

fn global(module: &str, name: &str) -> Result<Global, Error> {
    Ok(match (module, name) {
        ("collections", "OrderedDict") => Global::OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2") => Global::RebuildTensorV2,
        ("torch._utils", "_rebuild_parameter") => Global::RebuildParameter,
        ("torch", n) if DType::of_storage(n).is_some() => Global::Storage(DType::of_storage(n).expect("checked")),
        _ => return Err(Error::Refused(format!("{module}.{name}"))),
    })
}

fn pop(stack: &mut Vec<Item>) -> Result<Value, Error> {
    match stack.pop() {
        Some(Item::V(v)) => Ok(v),
        Some(Item::Mark) => Err(Error::Damaged("a mark where a value was expected".into())),
        None => Err(Error::Damaged("the stack runs empty".into())),
    }
}

fn pop_to_mark(stack: &mut Vec<Item>) -> Result<Vec<Value>, Error> {
    let mark = stack.iter().rposition(|i| matches!(i, Item::Mark)).ok_or_else(|| Error::Damaged("no mark".into()))?;
    let items = stack.split_off(mark + 1);
    stack.pop();
    Ok(items
        .into_iter()
        .map(|i| match i {
            Item::V(v) => v,
            Item::Mark => unreachable!("the last mark was found"),
        })
        .collect())
}

fn set_items(stack: &mut [Item], items: Vec<Value>) -> Result<(), Error> {
    if !items.len().is_multiple_of(2) {
        return Err(Error::Damaged("a dict item without a value".into()));
    }
    let Some(Item::V(Value::Dict(d))) = stack.last_mut() else {
        return Err(Error::Damaged("SETITEM on something that is not a dict".into()));
    };
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        match d.iter_mut().find(|(dk, _)| *dk == k) {
            Some(slot) => slot.1 = v,
            None => d.push((k, v)),
        }
    }
    Ok(())
}

fn ints(v: &Value, what: &str) -> Result<Vec<u64>, Error> {
    let Value::Tuple(items) = v else { return Err(Error::Damaged(format!("a tensor's {what} is a {}", v.kind()))) };
    items
        .iter()
        .map(|i| match i {
            Value::Int(n) if *n >= 0 => Ok(*n as u64),
            _ => Err(Error::Damaged(format!("a tensor's {what} holds a {}", i.kind()))),
        })
        .collect()
}

fn reduce(f: Value, args: Value) -> Result<Value, Error> {
    let Value::Tuple(args) = args else { return Err(Error::Damaged("REDUCE without an argument tuple".into())) };
    match f {
        Value::Global(Global::OrderedDict) if args.is_empty() => Ok(Value::Dict(vec![])),
        Value::Global(Global::RebuildTensorV2) if args.len() >= 4 => {
            let Value::Storage(storage) = &args[0] else {
                return Err(Error::Damaged(format!("a tensor over a {}, not a storage", args[0].kind())));
            };
            let Value::Int(offset) = args[1] else {
                return Err(Error::Damaged("a tensor's offset is not an int".into()));
            };
            Ok(Value::Tensor(TensorRef {
                storage: storage.clone(),
                offset: u64::try_from(offset).map_err(|_| Error::Damaged("a negative tensor offset".into()))?,
                size: ints(&args[2], "size")?,
                stride: ints(&args[3], "stride")?,
            }))
        }
        Value::Global(Global::RebuildParameter) if !args.is_empty() => Ok(args.into_iter().next().expect("not empty")),
        Value::Global(g) => Err(Error::Damaged(format!("{g:?} called with {} arguments", args.len()))),
        other => Err(Error::Damaged(format!("a call of a {}", other.kind()))),
    }
}

fn storage(pid: Value) -> Result<StorageRef, Error> {
    let bad = || Error::Damaged("a persistent id that is not a torch storage".into());
    let Value::Tuple(p) = pid else { return Err(bad()) };
    match p.as_slice() {
        [Value::Str(tag), Value::Global(Global::Storage(dtype)), key, _location, Value::Int(numel), ..]
            if tag == "storage" =>
        {
            let key = match key {
                Value::Str(s) => s.clone(),
                Value::Int(i) => i.to_string(),
                _ => return Err(bad()),
            };
            Ok(StorageRef { dtype: *dtype, key, numel: u64::try_from(*numel).map_err(|_| bad())? })
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_floats_convert_exactly() {
        for (h, f) in [(0x3c00u16, 1.0f32), (0xc000, -2.0), (0x0001, 5.960_464_5e-8), (0x7bff, 65504.0), (0x0000, 0.0)]
        {
            assert_eq!(f16_to_f32(h), f, "{h:#x}");
        }
        assert!(f16_to_f32(0x7e00).is_nan());
    }

    #[test]
    fn a_global_outside_the_list_is_refused_before_anything_runs() {
        // cos\nsystem\n(S'echo pwned'\ntR.
        let evil = b"cos\nsystem\n(X\x0b\x00\x00\x00echo pwnedtR.";
        assert_eq!(load(evil, &mut 0), Err(Error::Refused("os.system".into())));
    }

    #[test]
    fn an_ordered_dict_of_plain_values_reads_back() {
        // pickle.dumps(collections.OrderedDict(a=1, b=(2.5, "x")), protocol=2)
        let p = b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01(X\x01\x00\x00\x00aq\x02K\x01X\x01\x00\x00\x00bq\x03G@\x04\x00\x00\x00\x00\x00\x00X\x01\x00\x00\x00xq\x04\x86q\x05u.";
        let v = load(p, &mut 0).unwrap();
        assert_eq!(
            v,
            Value::Dict(vec![
                (Value::Str("a".into()), Value::Int(1)),
                (Value::Str("b".into()), Value::Tuple(vec![Value::Float(2.5), Value::Str("x".into())])),
            ])
        );
    }
}
