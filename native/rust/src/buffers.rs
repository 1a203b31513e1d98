//! Borrowing bytes from Python objects without copying.

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyList};

/// Inputs at least this long are processed with the GIL released.
pub const RELEASE_GIL_BYTES: usize = 4096;

/// A read-only view of a bytes-like object: `bytes` directly, anything else
/// through the buffer protocol (C-contiguous, unsigned bytes).
pub enum Bytes<'py> {
    Bytes(Bound<'py, PyBytes>),
    Buffer(PyBuffer<u8>),
}

impl<'py> Bytes<'py> {
    pub fn from_object(obj: &Bound<'py, PyAny>, what: &str) -> PyResult<Self> {
        if let Ok(b) = obj.cast::<PyBytes>() {
            return Ok(Bytes::Bytes(b.clone()));
        }
        match PyBuffer::<u8>::get(obj) {
            Ok(buf) if buf.is_c_contiguous() => Ok(Bytes::Buffer(buf)),
            Ok(_) => Err(PyValueError::new_err(format!(
                "{what}: buffer must be C-contiguous"
            ))),
            Err(_) => Err(PyTypeError::new_err(format!(
                "{what}: expected a bytes-like object, got {}",
                obj.get_type().name()?
            ))),
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Bytes(b) => b.as_bytes(),
            // SAFETY: the buffer is C-contiguous with u8 items and stays
            // exported (so cannot be resized or freed) while `self` lives.
            Bytes::Buffer(buf) => unsafe {
                std::slice::from_raw_parts(buf.buf_ptr() as *const u8, buf.len_bytes())
            },
        }
    }
}

/// Runs `f` on the bytes of `obj`, releasing the GIL for long inputs.
pub fn with_bytes<R: Send>(
    py: Python<'_>,
    obj: &Bound<'_, PyAny>,
    what: &str,
    f: impl FnOnce(&[u8]) -> R + Send,
) -> PyResult<R> {
    let view = Bytes::from_object(obj, what)?;
    let data = view.as_slice();
    if data.len() >= RELEASE_GIL_BYTES {
        Ok(py.detach(|| f(data)))
    } else {
        Ok(f(data))
    }
}

/// Copies a fixed-size byte string, with a clear error on the wrong length.
pub fn fixed<const N: usize>(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<[u8; N]> {
    let view = Bytes::from_object(obj, what)?;
    let data = view.as_slice();
    data.try_into().map_err(|_| {
        PyValueError::new_err(format!("{what}: expected {N} bytes, got {}", data.len()))
    })
}

/// Copies a list or tuple of bytes-like items into one buffer with offsets.
pub fn concat_items(seq: &Bound<'_, PyAny>, what: &str) -> PyResult<(Vec<u8>, Vec<usize>)> {
    let len = seq
        .len()
        .map_err(|_| PyTypeError::new_err(format!("{what}: expected a sequence of bytes")))?;
    let mut data = Vec::with_capacity(len * 32);
    let mut offsets = Vec::with_capacity(len + 1);
    offsets.push(0);
    if let Ok(list) = seq.cast::<PyList>() {
        // Fast path (a list of bytes, the common case): borrowed references
        // and one C call per item. The GIL is held and no Python code runs
        // in this loop, so the list cannot change under it.
        let py = seq.py();
        for i in 0..list.len() {
            // SAFETY: `list` is a live list and `i` < its length; the item is a
            // borrowed reference that stays valid while the GIL is held.
            unsafe {
                let item = ffi::PyList_GetItem(list.as_ptr(), i as ffi::Py_ssize_t);
                if item.is_null() {
                    return Err(PyErr::fetch(py));
                }
                if ffi::PyBytes_Check(item) != 0 {
                    let mut buf: *mut std::os::raw::c_char = std::ptr::null_mut();
                    let mut n: ffi::Py_ssize_t = 0;
                    if ffi::PyBytes_AsStringAndSize(item, &mut buf, &mut n) != 0 {
                        return Err(PyErr::fetch(py));
                    }
                    data.extend_from_slice(std::slice::from_raw_parts(
                        buf as *const u8,
                        n as usize,
                    ));
                } else {
                    let item = Bound::from_borrowed_ptr(py, item);
                    append_item(&item, &format!("{what}[{i}]"), &mut data)?;
                }
            }
            offsets.push(data.len());
        }
        return Ok((data, offsets));
    }
    for (i, item) in seq.try_iter()?.enumerate() {
        append_item(&item?, &format!("{what}[{i}]"), &mut data)?;
        offsets.push(data.len());
    }
    Ok((data, offsets))
}

fn append_item(item: &Bound<'_, PyAny>, what: &str, data: &mut Vec<u8>) -> PyResult<()> {
    if let Ok(b) = item.cast::<PyBytes>() {
        data.extend_from_slice(b.as_bytes());
    } else if let Ok(b) = item.cast::<PyByteArray>() {
        data.extend_from_slice(&b.to_vec());
    } else {
        data.extend_from_slice(Bytes::from_object(item, what)?.as_slice());
    }
    Ok(())
}

pub fn new_bytes<'py>(py: Python<'py>, data: &[u8]) -> Bound<'py, PyBytes> {
    PyBytes::new(py, data)
}
