//! Typed metadata lookups for hosts (what the C API's `chord_model_meta_*` functions return).
//!
//! Unlike the loader's accessors (which report a bad file as `BadModel`), these report a missing
//! key as `NotFound` and a value of another type as `TypeMismatch`. Widening rules:
//! * unsigned integer: any integer type whose value is not negative;
//! * signed integer: any integer type whose value fits in an `i64`;
//! * float: `f32` or `f64` (integers are not converted);
//! * bool and string: only that type.

use super::{Array, GgufFile, Value};
use crate::bail;
use crate::error::{Error, ErrorCode, Result};

/// The GGUF metadata value types, numbered as in the file format.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaType {
    /// Unsigned 8-bit integer.
    U8 = 0,
    /// Signed 8-bit integer.
    I8 = 1,
    /// Unsigned 16-bit integer.
    U16 = 2,
    /// Signed 16-bit integer.
    I16 = 3,
    /// Unsigned 32-bit integer.
    U32 = 4,
    /// Signed 32-bit integer.
    I32 = 5,
    /// 32-bit float.
    F32 = 6,
    /// Boolean.
    Bool = 7,
    /// UTF-8 string.
    String = 8,
    /// Array of values of one type.
    Array = 9,
    /// Unsigned 64-bit integer.
    U64 = 10,
    /// Signed 64-bit integer.
    I64 = 11,
    /// 64-bit float.
    F64 = 12,
}

impl MetaType {
    /// The type with GGUF id `id`, if there is one.
    pub fn from_id(id: u32) -> Option<MetaType> {
        use MetaType::*;
        [
            U8, I8, U16, I16, U32, I32, F32, Bool, String, Array, U64, I64, F64,
        ]
        .into_iter()
        .find(|t| *t as u32 == id)
    }

    /// The type of `v`.
    pub fn of(v: &Value) -> MetaType {
        match v {
            Value::U8(_) => MetaType::U8,
            Value::I8(_) => MetaType::I8,
            Value::U16(_) => MetaType::U16,
            Value::I16(_) => MetaType::I16,
            Value::U32(_) => MetaType::U32,
            Value::I32(_) => MetaType::I32,
            Value::F32(_) => MetaType::F32,
            Value::Bool(_) => MetaType::Bool,
            Value::String(_) => MetaType::String,
            Value::Array(_) => MetaType::Array,
            Value::U64(_) => MetaType::U64,
            Value::I64(_) => MetaType::I64,
            Value::F64(_) => MetaType::F64,
        }
    }
}

impl GgufFile {
    /// The value of `key`, or `NotFound`.
    pub fn meta(&self, key: &str) -> Result<&Value> {
        self.get(key).ok_or_else(|| {
            Error::new(
                ErrorCode::NotFound,
                format!("the model has no metadata key '{key}'"),
            )
        })
    }

    /// The key and value of metadata entry `index` (file order), or `InvalidArgument` past the end.
    pub fn meta_entry(&self, index: usize) -> Result<(&str, &Value)> {
        match self.metadata().get(index) {
            Some((k, v)) => Ok((k, v)),
            None => bail!(
                InvalidArgument,
                "metadata index {index} is out of range: the model has {} keys",
                self.metadata().len()
            ),
        }
    }

    /// The elements of the array `key`: `NotFound`, or `TypeMismatch` when it is not an array.
    pub fn meta_array(&self, key: &str) -> Result<&Array> {
        let v = self.meta(key)?;
        v.as_array().ok_or_else(|| mismatch(key, "an array", v))
    }

    /// The type of the elements of the array `key` (known also for an empty array).
    pub fn meta_array_type(&self, key: &str) -> Result<MetaType> {
        let t = self.meta_array(key)?.elem_type();
        MetaType::from_id(t).ok_or_else(|| {
            Error::new(
                ErrorCode::Internal,
                format!("array '{key}' has element type {t}"),
            )
        })
    }

    /// Element `index` of the array `key` (a copy); `InvalidArgument` when `index` is past its end.
    pub fn meta_element(&self, key: &str, index: usize) -> Result<Value> {
        let items = self.meta_array(key)?;
        match items.get(index) {
            Some(v) => Ok(v),
            None => bail!(
                InvalidArgument,
                "index {index} is out of range: array '{key}' has {} elements",
                items.len()
            ),
        }
    }
}

/// `v` as an unsigned integer: any integer type holding a value that is not negative.
pub fn to_u64(v: &Value, what: &str) -> Result<u64> {
    match v.as_u64() {
        Some(n) => Ok(n),
        None if v.as_i64().is_some() => bail!(
            TypeMismatch,
            "{what} is {v}, a negative {}, which an unsigned integer cannot hold",
            v.type_name()
        ),
        None => Err(mismatch(what, "an integer", v)),
    }
}

/// `v` as a signed integer: any integer type holding a value that fits in an `i64`.
pub fn to_i64(v: &Value, what: &str) -> Result<i64> {
    match v.as_i64() {
        Some(n) => Ok(n),
        None if v.as_u64().is_some() => bail!(
            TypeMismatch,
            "{what} is {v}, which does not fit in a signed 64-bit integer"
        ),
        None => Err(mismatch(what, "an integer", v)),
    }
}

/// `v` as a float: an `f32` (converted exactly) or an `f64`.
pub fn to_f64(v: &Value, what: &str) -> Result<f64> {
    match *v {
        Value::F32(f) => Ok(f as f64),
        Value::F64(f) => Ok(f),
        _ => Err(mismatch(what, "a float", v)),
    }
}

/// `v` as a bool.
pub fn to_bool(v: &Value, what: &str) -> Result<bool> {
    v.as_bool().ok_or_else(|| mismatch(what, "a bool", v))
}

/// `v` as a string.
pub fn to_str<'a>(v: &'a Value, what: &str) -> Result<&'a str> {
    v.as_str().ok_or_else(|| mismatch(what, "a string", v))
}

fn mismatch(what: &str, want: &str, got: &Value) -> Error {
    Error::new(
        ErrorCode::TypeMismatch,
        format!("{what} is {}, not {want}", got.type_name()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_widen_when_they_fit() {
        assert_eq!(to_u64(&Value::U8(7), "k").unwrap(), 7);
        assert_eq!(to_u64(&Value::I32(5), "k").unwrap(), 5);
        assert_eq!(to_u64(&Value::U64(u64::MAX), "k").unwrap(), u64::MAX);
        let e = to_u64(&Value::I16(-2), "k").unwrap_err();
        assert_eq!(e.code(), ErrorCode::TypeMismatch);
        assert!(e.message().contains("negative"), "{}", e.message());
        assert_eq!(to_i64(&Value::I8(-3), "k").unwrap(), -3);
        assert_eq!(to_i64(&Value::U32(u32::MAX), "k").unwrap(), u32::MAX as i64);
        let e = to_i64(&Value::U64(u64::MAX), "k").unwrap_err();
        assert_eq!(e.code(), ErrorCode::TypeMismatch);
        assert_eq!(to_i64(&Value::U64(i64::MAX as u64), "k").unwrap(), i64::MAX);
    }

    #[test]
    fn other_types_do_not_convert() {
        for v in [
            Value::F32(1.0),
            Value::Bool(true),
            Value::String("1".into()),
            Value::Array(Array::U8(vec![1])),
        ] {
            assert_eq!(to_u64(&v, "k").unwrap_err().code(), ErrorCode::TypeMismatch);
            assert_eq!(to_i64(&v, "k").unwrap_err().code(), ErrorCode::TypeMismatch);
        }
        assert_eq!(to_f64(&Value::F32(0.5), "k").unwrap(), 0.5);
        assert_eq!(to_f64(&Value::F64(-2.25), "k").unwrap(), -2.25);
        assert_eq!(
            to_f64(&Value::U32(1), "k").unwrap_err().code(),
            ErrorCode::TypeMismatch
        );
        assert!(to_bool(&Value::Bool(true), "k").unwrap());
        assert_eq!(
            to_bool(&Value::U8(1), "k").unwrap_err().code(),
            ErrorCode::TypeMismatch
        );
        assert_eq!(to_str(&Value::String("x".into()), "k").unwrap(), "x");
        assert_eq!(
            to_str(&Value::U8(1), "k").unwrap_err().code(),
            ErrorCode::TypeMismatch
        );
    }

    #[test]
    fn type_ids_round_trip() {
        for id in 0..13 {
            let t = MetaType::from_id(id).unwrap();
            assert_eq!(t as u32, id);
        }
        assert_eq!(MetaType::from_id(13), None);
        assert_eq!(
            MetaType::of(&Value::Array(Array::U8(vec![]))),
            MetaType::Array
        );
        assert_eq!(MetaType::of(&Value::F64(0.0)), MetaType::F64);
    }
}
