//! BLAKE3 (all three modes, extendable output, streaming) and SHA-256.

use crate::buffers::{fixed, new_bytes, with_bytes, RELEASE_GIL_BYTES};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use sha2::{Digest, Sha256};

/// Longest output that one call may ask for (1 GiB).
const MAX_OUTPUT: usize = 1 << 30;

fn check_length(length: usize) -> PyResult<()> {
    if length == 0 || length > MAX_OUTPUT {
        return Err(PyValueError::new_err(format!(
            "length must be between 1 and {MAX_OUTPUT}, got {length}"
        )));
    }
    Ok(())
}

fn read_output(h: &blake3::Hasher, length: usize, seek: u64) -> Vec<u8> {
    let mut out = vec![0u8; length];
    let mut reader = h.finalize_xof();
    reader.set_position(seek);
    reader.fill(&mut out);
    out
}

fn hash_with<'py>(
    py: Python<'py>,
    mut h: blake3::Hasher,
    data: &Bound<'py, PyAny>,
    length: usize,
    seek: u64,
    threads: bool,
) -> PyResult<Bound<'py, PyBytes>> {
    check_length(length)?;
    let out = with_bytes(py, data, "data", move |d| {
        if threads {
            h.update_rayon(d);
        } else {
            h.update(d);
        }
        read_output(&h, length, seek)
    })?;
    Ok(new_bytes(py, &out))
}

#[pyfunction]
#[pyo3(signature = (data, /, *, length = 32, seek = 0, threads = false))]
pub fn blake3_hash<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    length: usize,
    seek: u64,
    threads: bool,
) -> PyResult<Bound<'py, PyBytes>> {
    hash_with(py, blake3::Hasher::new(), data, length, seek, threads)
}

#[pyfunction]
#[pyo3(signature = (key, data, /, *, length = 32, seek = 0, threads = false))]
pub fn blake3_keyed_hash<'py>(
    py: Python<'py>,
    key: &Bound<'py, PyAny>,
    data: &Bound<'py, PyAny>,
    length: usize,
    seek: u64,
    threads: bool,
) -> PyResult<Bound<'py, PyBytes>> {
    let key: [u8; 32] = fixed(key, "key")?;
    hash_with(
        py,
        blake3::Hasher::new_keyed(&key),
        data,
        length,
        seek,
        threads,
    )
}

#[pyfunction]
#[pyo3(signature = (context, key_material, /, *, length = 32, seek = 0))]
pub fn blake3_derive_key<'py>(
    py: Python<'py>,
    context: &str,
    key_material: &Bound<'py, PyAny>,
    length: usize,
    seek: u64,
) -> PyResult<Bound<'py, PyBytes>> {
    hash_with(
        py,
        blake3::Hasher::new_derive_key(context),
        key_material,
        length,
        seek,
        false,
    )
}

#[pyfunction]
#[pyo3(signature = (data, /))]
pub fn sha256<'py>(py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    let out = with_bytes(py, data, "data", |d| Sha256::digest(d).to_vec())?;
    Ok(new_bytes(py, &out))
}

/// Streaming BLAKE3 in any of its three modes.
#[pyclass(module = "bcai_native")]
pub struct Blake3 {
    hasher: blake3::Hasher,
    threads: bool,
}

#[pymethods]
impl Blake3 {
    #[new]
    #[pyo3(signature = (data = None, /, *, key = None, derive_key_context = None, threads = false))]
    fn new(
        py: Python<'_>,
        data: Option<&Bound<'_, PyAny>>,
        key: Option<&Bound<'_, PyAny>>,
        derive_key_context: Option<&str>,
        threads: bool,
    ) -> PyResult<Self> {
        let hasher = match (key, derive_key_context) {
            (Some(_), Some(_)) => {
                return Err(PyValueError::new_err(
                    "give key or derive_key_context, not both",
                ))
            }
            (Some(k), None) => blake3::Hasher::new_keyed(&fixed::<32>(k, "key")?),
            (None, Some(ctx)) => blake3::Hasher::new_derive_key(ctx),
            (None, None) => blake3::Hasher::new(),
        };
        let mut this = Blake3 { hasher, threads };
        if let Some(d) = data {
            this.update(py, d)?;
        }
        Ok(this)
    }

    fn update(&mut self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let threads = self.threads;
        let hasher = &mut self.hasher;
        with_bytes(py, data, "data", move |d| {
            if threads && d.len() >= 16 * RELEASE_GIL_BYTES {
                hasher.update_rayon(d);
            } else {
                hasher.update(d);
            }
        })
    }

    #[pyo3(signature = (length = 32, *, seek = 0))]
    fn digest<'py>(
        &self,
        py: Python<'py>,
        length: usize,
        seek: u64,
    ) -> PyResult<Bound<'py, PyBytes>> {
        check_length(length)?;
        Ok(new_bytes(py, &read_output(&self.hasher, length, seek)))
    }

    #[pyo3(signature = (length = 32, *, seek = 0))]
    fn hexdigest(&self, length: usize, seek: u64) -> PyResult<String> {
        check_length(length)?;
        Ok(read_output(&self.hasher, length, seek)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect())
    }

    fn copy(&self) -> Blake3 {
        Blake3 {
            hasher: self.hasher.clone(),
            threads: self.threads,
        }
    }

    fn reset(&mut self) {
        self.hasher.reset();
    }
}
