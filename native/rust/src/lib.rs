//! `bcai_native`: bcai's compiled core. Python reaches it only through thin
//! wrappers in `bcai.crypto` and `bcai.pouw`; its surface is described (with
//! docstrings) in `bcai_native.pyi`, which CI checks against this module.

mod arena;
mod blake3x8;
mod buffers;
mod ed25519;
mod freivalds;
mod hash;
mod merkle;
mod pouw;
#[cfg(target_arch = "x86_64")]
mod pouw_avx2;
mod smt;
mod smt_py;

use buffers::{concat_items, fixed, new_bytes, with_bytes, Bytes};
use numpy::PyReadonlyArray2;
use pyo3::exceptions::{PyOSError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

// ---------------------------------------------------------------- Merkle

fn leaves_from(seq: &Bound<'_, PyAny>) -> PyResult<merkle::Leaves> {
    let (data, offsets) = concat_items(seq, "leaves")?;
    Ok(merkle::Leaves { data, offsets })
}

/// The root of a list whose items are all `bytes`, without copying them:
/// the GIL stays held (so the list cannot change), this thread walks the list
/// (`in_place_scope`: the C API is only called from the GIL-holding thread)
/// one TASK-sized chunk at a time and rayon's workers hash each chunk as soon
/// as its slices are known. `None` if an item is not `bytes`.
fn list_root_borrowed(list: &Bound<'_, PyList>) -> PyResult<Option<merkle::Hash>> {
    let n = list.len();
    let chunks = n.div_ceil(merkle::TASK);
    let mut roots = vec![[0u8; 32]; chunks];
    let mut all_bytes = true;
    rayon::in_place_scope(|scope| {
        for (c, slot) in roots.iter_mut().enumerate() {
            let start = c * merkle::TASK;
            let end = n.min(start + merkle::TASK);
            let mut slices: Vec<&[u8]> = Vec::with_capacity(end - start);
            for i in start..end {
                // SAFETY: the list is alive and `i` < its length; while the GIL
                // is held and no Python code runs, neither the list nor its
                // (immutable) bytes items change or die, and the scope ends
                // before this function returns.
                let slice = unsafe {
                    let item = ffi::PyList_GetItem(list.as_ptr(), i as ffi::Py_ssize_t);
                    if item.is_null() || ffi::PyBytes_CheckExact(item) == 0 {
                        None
                    } else {
                        let len = ffi::PyBytes_Size(item);
                        let ptr = ffi::PyBytes_AsString(item);
                        Some(std::slice::from_raw_parts(ptr as *const u8, len as usize))
                    }
                };
                match slice {
                    Some(s) => slices.push(s),
                    None => {
                        all_bytes = false;
                        return;
                    }
                }
            }
            scope.spawn(move |_| {
                *slot = merkle::subtree_root(merkle::LeafSource::Slices(&slices), 0, slices.len());
            });
        }
    });
    if !all_bytes {
        if let Some(err) = PyErr::take(list.py()) {
            return Err(err);
        }
        return Ok(None);
    }
    Ok(Some(match chunks {
        0 => merkle::empty_root(),
        1 => roots[0],
        _ => merkle::root_of_level(roots.concat()),
    }))
}

#[pyfunction]
#[pyo3(signature = (leaves, /))]
fn merkle_root<'py>(py: Python<'py>, leaves: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    if let Ok(list) = leaves.cast::<PyList>() {
        if let Some(root) = list_root_borrowed(list)? {
            return Ok(new_bytes(py, &root));
        }
    }
    let leaves = leaves_from(leaves)?;
    let root = py.detach(|| merkle::root(leaves.source()));
    Ok(new_bytes(py, &root))
}

#[pyfunction]
#[pyo3(signature = (data, leaf_size, /))]
fn merkle_root_packed<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    leaf_size: usize,
) -> PyResult<Bound<'py, PyBytes>> {
    if leaf_size == 0 {
        return Err(PyValueError::new_err("leaf_size must be positive"));
    }
    let view = Bytes::from_object(data, "data")?;
    let d = view.as_slice();
    if d.len() % leaf_size != 0 {
        return Err(PyValueError::new_err(format!(
            "data length {} is not a multiple of leaf_size {leaf_size}",
            d.len()
        )));
    }
    let root = py.detach(|| {
        merkle::root(merkle::LeafSource::Packed {
            data: d,
            size: leaf_size,
        })
    });
    Ok(new_bytes(py, &root))
}

#[pyfunction]
#[pyo3(signature = (leaves, index, /))]
fn merkle_proof<'py>(
    py: Python<'py>,
    leaves: &Bound<'py, PyAny>,
    index: usize,
) -> PyResult<Bound<'py, PyList>> {
    let leaves = leaves_from(leaves)?;
    if index >= leaves.len() {
        return Err(PyValueError::new_err(format!(
            "index {index} out of range for a tree of {} leaves",
            leaves.len()
        )));
    }
    let path = py.detach(|| merkle::proof(leaves.source(), index));
    PyList::new(py, path.iter().map(|h| new_bytes(py, h)))
}

#[pyfunction]
#[pyo3(signature = (root, leaf, index, size, proof, /))]
fn merkle_verify(
    root: &Bound<'_, PyAny>,
    leaf: &Bound<'_, PyAny>,
    index: u64,
    size: u64,
    proof: &Bound<'_, PyAny>,
) -> PyResult<bool> {
    let root: [u8; 32] = fixed(root, "root")?;
    let leaf_hash = merkle::leaf_hash(Bytes::from_object(leaf, "leaf")?.as_slice());
    let mut path = Vec::new();
    for (i, p) in proof.try_iter()?.enumerate() {
        path.push(fixed::<32>(&p?, &format!("proof[{i}]"))?);
    }
    if path.len() > 64 {
        return Err(PyValueError::new_err("proof longer than 64 hashes"));
    }
    Ok(merkle::verify(&root, &leaf_hash, index, size, &path))
}

#[pyfunction]
#[pyo3(signature = (data, /))]
fn merkle_leaf_hash<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let h = with_bytes(py, data, "data", merkle::leaf_hash)?;
    Ok(new_bytes(py, &h))
}

#[pyfunction]
#[pyo3(signature = (left, right, /))]
fn merkle_node_hash<'py>(
    py: Python<'py>,
    left: &Bound<'py, PyAny>,
    right: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let h = merkle::node_hash(&fixed(left, "left")?, &fixed(right, "right")?);
    Ok(new_bytes(py, &h))
}

// ---------------------------------------------------------------- Ed25519

#[pyfunction]
fn ed25519_generate<'py>(py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
    let seed =
        ed25519::random_seed().map_err(|e| PyOSError::new_err(format!("no OS randomness: {e}")))?;
    Ok(new_bytes(py, &seed))
}

#[pyfunction]
#[pyo3(signature = (seed, /))]
fn ed25519_public_key<'py>(
    py: Python<'py>,
    seed: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    Ok(new_bytes(py, &ed25519::public_key(&fixed(seed, "seed")?)))
}

#[pyfunction]
#[pyo3(signature = (seed, message, /))]
fn ed25519_sign<'py>(
    py: Python<'py>,
    seed: &Bound<'py, PyAny>,
    message: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let seed: [u8; 32] = fixed(seed, "seed")?;
    let sig = with_bytes(py, message, "message", |m| ed25519::sign(&seed, m))?;
    Ok(new_bytes(py, &sig))
}

#[pyfunction]
#[pyo3(signature = (public_key, message, signature, /))]
fn ed25519_verify(
    py: Python<'_>,
    public_key: &Bound<'_, PyAny>,
    message: &Bound<'_, PyAny>,
    signature: &Bound<'_, PyAny>,
) -> PyResult<bool> {
    let pk: [u8; 32] = fixed(public_key, "public_key")?;
    let sig: [u8; 64] = fixed(signature, "signature")?;
    // One verification takes ~50 µs: always worth releasing the GIL.
    let view = Bytes::from_object(message, "message")?;
    let m = view.as_slice();
    Ok(py.detach(|| ed25519::verify(&pk, m, &sig)))
}

#[pyfunction]
#[pyo3(signature = (items, /))]
fn ed25519_verify_batch(py: Python<'_>, items: &Bound<'_, PyAny>) -> PyResult<Vec<bool>> {
    let mut parsed = Vec::new();
    for (i, item) in items.try_iter()?.enumerate() {
        let item = item?;
        let t = item.cast::<PyTuple>().map_err(|_| {
            PyTypeError::new_err(format!(
                "items[{i}]: expected a (public_key, message, signature) tuple"
            ))
        })?;
        if t.len() != 3 {
            return Err(PyValueError::new_err(format!(
                "items[{i}]: expected 3 fields (public_key, message, signature), got {}",
                t.len()
            )));
        }
        parsed.push(ed25519::Item {
            public_key: fixed(&t.get_item(0)?, &format!("items[{i}].public_key"))?,
            message: Bytes::from_object(&t.get_item(1)?, &format!("items[{i}].message"))?
                .as_slice()
                .to_vec(),
            signature: fixed(&t.get_item(2)?, &format!("items[{i}].signature"))?,
        });
    }
    Ok(py.detach(|| ed25519::verify_batch(&parsed)))
}

// ---------------------------------------------------------------- Freivalds

#[pyfunction]
#[pyo3(signature = (a, b, c, /, *, rounds = 2, seed))]
fn freivalds_check(
    py: Python<'_>,
    a: PyReadonlyArray2<'_, i8>,
    b: PyReadonlyArray2<'_, i8>,
    c: PyReadonlyArray2<'_, i32>,
    rounds: u32,
    seed: &Bound<'_, PyAny>,
) -> PyResult<bool> {
    let (a, b, c) = (a.as_array(), b.as_array(), c.as_array());
    if a.ncols() != b.nrows() || c.nrows() != a.nrows() || c.ncols() != b.ncols() {
        return Err(PyValueError::new_err(format!(
            "shapes do not chain: A {:?} · B {:?} ≠ C {:?}",
            a.shape(),
            b.shape(),
            c.shape()
        )));
    }
    if rounds == 0 || rounds > 128 {
        return Err(PyValueError::new_err(format!(
            "rounds must be 1..=128, got {rounds}"
        )));
    }
    let seed = Bytes::from_object(seed, "seed")?.as_slice().to_vec();
    Ok(py.detach(|| freivalds::check(&a, &b, &c, rounds, &seed)))
}

/// The PoUW transcript's leaves (4 bytes each) of A' (n×k) and B'ᵀ (m×k);
/// `key` holds κ (low 32 bits) and λ (high 32 bits).
#[pyfunction]
#[pyo3(signature = (a, bt, /, *, tile, key))]
fn pouw_transcript<'py>(
    py: Python<'py>,
    a: PyReadonlyArray2<'py, i8>,
    bt: PyReadonlyArray2<'py, i8>,
    tile: usize,
    key: u64,
) -> PyResult<Bound<'py, PyBytes>> {
    let (a, bt) = (a.as_array(), bt.as_array());
    if a.ncols() != bt.ncols() {
        return Err(PyValueError::new_err(format!(
            "A' is {:?} and B'ᵀ is {:?}: inner dimensions differ",
            a.shape(),
            bt.shape()
        )));
    }
    if tile == 0
        || tile % 2 != 0
        || a.nrows() % tile != 0
        || a.ncols() % tile != 0
        || bt.nrows() % tile != 0
    {
        return Err(PyValueError::new_err(format!(
            "tile {tile} is odd or does not divide the shapes {:?} and {:?}",
            a.shape(),
            bt.shape()
        )));
    }
    if a.ncols() > (i32::MAX as usize) / (128 * 128) {
        return Err(PyValueError::new_err(
            "k too large: int32 partial sums could overflow",
        ));
    }
    let leaves = py.detach(|| pouw::transcript(&a, &bt, tile, key));
    Ok(new_bytes(py, &leaves))
}

/// The leaves of a whole attempt from A (n×k), B (k×m) and the noise
/// factors E_L (n×r), E_Rᵀ (k×r), F_L (k×r), F_Rᵀ (m×r): the noisy operands
/// are built and packed for the AVX2 kernel in one go. `None` where that
/// kernel does not apply (no AVX2, or b not a multiple of 16): the caller
/// then builds A', B' itself and calls `pouw_transcript`.
///
/// `held` — a token for each side, (A', B'): a side whose token is the one
/// the shared workspace last formed it under is not formed again (a token
/// must name everything its side is formed from: the matrix, the side's
/// noise seed, the shape and rank; `bcai.pouw._seal.host_attempt_leaves`).
#[pyfunction]
#[pyo3(signature = (a, b, e_l, e_rt, f_l, f_rt, /, *, tile, key, held = None))]
#[allow(clippy::too_many_arguments)]
fn pouw_attempt_leaves<'py>(
    py: Python<'py>,
    a: PyReadonlyArray2<'py, i8>,
    b: PyReadonlyArray2<'py, i8>,
    e_l: PyReadonlyArray2<'py, i8>,
    e_rt: PyReadonlyArray2<'py, i8>,
    f_l: PyReadonlyArray2<'py, i8>,
    f_rt: PyReadonlyArray2<'py, i8>,
    tile: usize,
    key: u64,
    held: Option<(Vec<u8>, Vec<u8>)>,
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    let views = [
        a.as_array(),
        b.as_array(),
        e_l.as_array(),
        e_rt.as_array(),
        f_l.as_array(),
        f_rt.as_array(),
    ];
    let (n, k, m, r) = (
        views[0].nrows(),
        views[0].ncols(),
        views[1].ncols(),
        views[2].ncols(),
    );
    let want = [(n, k), (k, m), (n, r), (k, r), (k, r), (m, r)];
    for (name, (view, want)) in ["A", "B", "E_L", "E_Rᵀ", "F_L", "F_Rᵀ"]
        .iter()
        .zip(views.iter().zip(want))
    {
        if view.dim() != want {
            return Err(PyValueError::new_err(format!(
                "{name} is {:?}, expected {want:?} for A {n}×{k}, B {k}×{m}, rank {r}",
                view.shape()
            )));
        }
    }
    if tile == 0 || tile % 2 != 0 || n % tile != 0 || k % tile != 0 || m % tile != 0 || r != tile {
        return Err(PyValueError::new_err(format!(
            "tile {tile} must be even, equal the rank {r} and divide {n}×{k}×{m}"
        )));
    }
    if k > (i32::MAX as usize) / (128 * 128) {
        return Err(PyValueError::new_err(
            "k too large: int32 partial sums could overflow",
        ));
    }
    #[cfg(target_arch = "x86_64")]
    if pouw_avx2::applies(tile) {
        let owned: Vec<_> = views.iter().map(|v| v.as_standard_layout()).collect();
        let s: Vec<&[i8]> = owned.iter().map(|v| v.as_slice().unwrap()).collect();
        let leaves = py.detach(|| {
            pouw_avx2::with_workspace(|ws| {
                let tokens = held.as_ref().map(|(a, b)| [a.as_slice(), b.as_slice()]);
                ws.load_noisy(
                    s[0],
                    s[1],
                    s[2],
                    s[3],
                    s[4],
                    s[5],
                    (n, k, m, r),
                    tile,
                    tokens,
                );
                pouw::layout(
                    &pouw_avx2::transcript_packed(ws.op(), n, m, tile, key),
                    k / tile,
                )
            })
        });
        return Ok(Some(new_bytes(py, &leaves)));
    }
    Ok(None)
}

/// A·B (int32, n×m) of int8 A (n×k) and Bᵀ (m×k) by the transcript's AVX2
/// kernel without the digest — the best bare int8 product on this CPU, for
/// benchmarks — into `out` when given (C-contiguous int32 n×m). Needs AVX2
/// and a tile that is a multiple of 16 dividing n and m.
#[pyfunction]
#[pyo3(signature = (a, bt, /, *, tile = 64, out = None))]
fn pouw_product<'py>(
    py: Python<'py>,
    a: PyReadonlyArray2<'py, i8>,
    bt: PyReadonlyArray2<'py, i8>,
    tile: usize,
    out: Option<Bound<'py, numpy::PyArray2<i32>>>,
) -> PyResult<Bound<'py, numpy::PyArray2<i32>>> {
    use numpy::{PyArrayMethods, PyUntypedArrayMethods};
    let (a, bt) = (a.as_array(), bt.as_array());
    let (n, k, m) = (a.nrows(), a.ncols(), bt.nrows());
    if bt.ncols() != k || k % 2 != 0 || tile == 0 || n % tile != 0 || m % tile != 0 {
        return Err(PyValueError::new_err(format!(
            "tile {tile} and shapes {:?}, {:?}: need equal even inner dimensions and the tile dividing n and m",
            a.shape(),
            bt.shape()
        )));
    }
    if k > (i32::MAX as usize) / (128 * 128) {
        return Err(PyValueError::new_err(format!(
            "k = {k} too large: int32 sums of int8 products could overflow"
        )));
    }
    let out = match out {
        Some(out) => {
            if out.shape() != [n, m] || !out.is_c_contiguous() {
                return Err(PyValueError::new_err(format!(
                    "out must be a C-contiguous int32 array of shape ({n}, {m})"
                )));
            }
            out
        }
        // SAFETY: every entry is written below before Python sees the array
        None => unsafe { numpy::PyArray2::<i32>::new(py, [n, m], false) },
    };
    #[cfg(target_arch = "x86_64")]
    if pouw_avx2::applies(tile) {
        let (a, bt) = (a.as_standard_layout(), bt.as_standard_layout());
        let (a, bt) = (a.as_slice().unwrap(), bt.as_slice().unwrap());
        let mut held = out.try_readwrite()?;
        let c = held.as_slice_mut().expect("C-contiguous (checked)");
        py.detach(|| pouw_avx2::product(a, bt, n, k, m, tile, c));
        drop(held);
        return Ok(out);
    }
    Err(PyValueError::new_err(
        "the AVX2 kernel needs an x86-64 CPU with AVX2 and a tile that is a multiple of 16",
    ))
}

#[pymodule]
fn bcai_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("MERKLE_LEAF_CONTEXT", merkle::LEAF_CONTEXT)?;
    m.add("MERKLE_NODE_CONTEXT", merkle::NODE_CONTEXT)?;
    m.add("FREIVALDS_MODULUS", freivalds::P)?;
    m.add_class::<hash::Blake3>()?;
    m.add_function(wrap_pyfunction!(hash::blake3_hash, m)?)?;
    m.add_function(wrap_pyfunction!(hash::blake3_keyed_hash, m)?)?;
    m.add_function(wrap_pyfunction!(hash::blake3_derive_key, m)?)?;
    m.add_function(wrap_pyfunction!(hash::sha256, m)?)?;
    m.add_function(wrap_pyfunction!(merkle_root, m)?)?;
    m.add_function(wrap_pyfunction!(merkle_root_packed, m)?)?;
    m.add_function(wrap_pyfunction!(merkle_proof, m)?)?;
    m.add_function(wrap_pyfunction!(merkle_verify, m)?)?;
    m.add_function(wrap_pyfunction!(merkle_leaf_hash, m)?)?;
    m.add_function(wrap_pyfunction!(merkle_node_hash, m)?)?;
    m.add_function(wrap_pyfunction!(ed25519_generate, m)?)?;
    m.add_function(wrap_pyfunction!(ed25519_public_key, m)?)?;
    m.add_function(wrap_pyfunction!(ed25519_sign, m)?)?;
    m.add_function(wrap_pyfunction!(ed25519_verify, m)?)?;
    m.add_function(wrap_pyfunction!(ed25519_verify_batch, m)?)?;
    m.add_function(wrap_pyfunction!(freivalds_check, m)?)?;
    m.add_function(wrap_pyfunction!(pouw_transcript, m)?)?;
    m.add_function(wrap_pyfunction!(pouw_product, m)?)?;
    m.add_function(wrap_pyfunction!(pouw_attempt_leaves, m)?)?;
    m.add("SMT_LEAF_CONTEXT", smt::LEAF_CONTEXT)?;
    m.add("SMT_NODE_CONTEXT", smt::NODE_CONTEXT)?;
    m.add_class::<smt_py::SparseMerkleTree>()?;
    m.add_function(wrap_pyfunction!(smt_py::smt_verify, m)?)?;
    m.add_function(wrap_pyfunction!(smt_py::smt_leaf_hash, m)?)?;
    m.add_function(wrap_pyfunction!(smt_py::smt_node_hash, m)?)?;
    Ok(())
}
