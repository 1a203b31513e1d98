//! Python surface of the sparse Merkle tree (`bcai_native.SparseMerkleTree`).

use crate::buffers::{fixed, new_bytes};
use crate::smt::{self, Hash, Node, Proof, SmtError, Tree};
use pyo3::exceptions::{PyLookupError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

fn to_py_err(e: SmtError) -> PyErr {
    match e {
        SmtError::MissingNode(h) => PyLookupError::new_err(format!(
            "smt: node {} is not loaded (unknown root, or the store lost it)",
            hex(&h)
        )),
        SmtError::DuplicateKey(k) => {
            PyValueError::new_err(format!("smt: key {} appears twice in one update", hex(&k)))
        }
    }
}

/// A 32-byte value: `bytes` directly, anything else through `fixed` (which
/// names the argument in its error; the name is only built on that path).
fn hash32(obj: &Bound<'_, PyAny>, what: impl FnOnce() -> String) -> PyResult<Hash> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        if let Ok(h) = b.as_bytes().try_into() {
            return Ok(h);
        }
    }
    fixed(obj, &what())
}

fn hex(h: &Hash) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

/// Persistent sparse Merkle tree: every root ever produced stays readable.
#[pyclass(module = "bcai_native")]
pub struct SparseMerkleTree {
    tree: Tree,
}

#[pymethods]
impl SparseMerkleTree {
    #[new]
    fn new() -> Self {
        SparseMerkleTree { tree: Tree::new() }
    }

    #[getter]
    fn node_count(&self) -> usize {
        self.tree.len_nodes()
    }

    fn update<'py>(
        &mut self,
        py: Python<'py>,
        root: &Bound<'py, PyAny>,
        updates: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let root: Hash = fixed(root, "root")?;
        let mut parsed = Vec::with_capacity(updates.len().unwrap_or(0));
        for (i, item) in updates.try_iter()?.enumerate() {
            let item = item?;
            let pair = item.cast::<PyTuple>().map_err(|_| {
                PyValueError::new_err(format!(
                    "updates[{i}]: expected a (key, value_hash | None) tuple"
                ))
            })?;
            if pair.len() != 2 {
                return Err(PyValueError::new_err(format!(
                    "updates[{i}]: expected 2 fields"
                )));
            }
            let key: Hash = hash32(&pair.get_item(0)?, || format!("updates[{i}].key"))?;
            let v = pair.get_item(1)?;
            let value = if v.is_none() {
                None
            } else {
                Some(hash32(&v, || format!("updates[{i}].value_hash"))?)
            };
            parsed.push((key, value));
        }
        let tree = &mut self.tree;
        let new_root = py
            .detach(move || tree.update(root, parsed))
            .map_err(to_py_err)?;
        Ok(new_bytes(py, &new_root))
    }

    fn get<'py>(
        &mut self,
        py: Python<'py>,
        root: &Bound<'py, PyAny>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let v = self
            .tree
            .get(fixed(root, "root")?, &fixed(key, "key")?)
            .map_err(to_py_err)?;
        Ok(v.map(|v| new_bytes(py, &v)))
    }

    fn prove<'py>(
        &mut self,
        py: Python<'py>,
        root: &Bound<'py, PyAny>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let p = self
            .tree
            .prove(fixed(root, "root")?, &fixed(key, "key")?)
            .map_err(to_py_err)?;
        let siblings = PyList::new(py, p.siblings.iter().map(|h| new_bytes(py, h)))?;
        let terminal = match p.terminal {
            Some((k, v)) => PyTuple::new(py, [new_bytes(py, &k), new_bytes(py, &v)])?.into_any(),
            None => py.None().into_bound(py),
        };
        PyTuple::new(py, [siblings.into_any(), terminal])
    }

    /// Nodes created since the last call, as (hash, 65-byte encoding).
    fn drain_new_nodes<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let nodes = self.tree.drain_new();
        PyList::new(
            py,
            nodes
                .iter()
                .map(|(h, n)| (new_bytes(py, h), new_bytes(py, &n.encode()))),
        )
    }

    /// Loads stored nodes (65-byte encodings), e.g. when a node restarts.
    fn load_nodes(&mut self, encoded: &Bound<'_, PyAny>) -> PyResult<()> {
        for (i, item) in encoded.try_iter()?.enumerate() {
            let item = item?;
            let data = crate::buffers::Bytes::from_object(&item, &format!("encoded[{i}]"))?;
            let node = Node::decode(data.as_slice()).ok_or_else(|| {
                PyValueError::new_err(format!("encoded[{i}]: not a 65-byte tree node"))
            })?;
            self.tree.load_node(node);
        }
        Ok(())
    }
}

#[pyfunction]
#[pyo3(signature = (root, key, value_hash, siblings, terminal, /))]
pub fn smt_verify(
    root: &Bound<'_, PyAny>,
    key: &Bound<'_, PyAny>,
    value_hash: Option<&Bound<'_, PyAny>>,
    siblings: &Bound<'_, PyAny>,
    terminal: Option<&Bound<'_, PyAny>>,
) -> PyResult<bool> {
    let root: Hash = fixed(root, "root")?;
    let key: Hash = fixed(key, "key")?;
    let value = value_hash
        .map(|v| fixed::<32>(v, "value_hash"))
        .transpose()?;
    let mut sibs = Vec::new();
    for (i, s) in siblings.try_iter()?.enumerate() {
        if i >= smt::MAX_DEPTH {
            return Ok(false);
        }
        sibs.push(fixed::<32>(&s?, &format!("siblings[{i}]"))?);
    }
    let terminal = match terminal {
        None => None,
        Some(t) => {
            let t = t.cast::<PyTuple>().map_err(|_| {
                PyValueError::new_err("terminal: expected None or a (key, value_hash) tuple")
            })?;
            if t.len() != 2 {
                return Err(PyValueError::new_err("terminal: expected 2 fields"));
            }
            Some((
                fixed(&t.get_item(0)?, "terminal.key")?,
                fixed(&t.get_item(1)?, "terminal.value_hash")?,
            ))
        }
    };
    Ok(smt::verify(
        &root,
        &key,
        value.as_ref(),
        &Proof {
            siblings: sibs,
            terminal,
        },
    ))
}

/// Hashes two 32-byte arguments with `f` (the shared body of the two
/// hash functions below).
fn hash_two<'py>(
    py: Python<'py>,
    (a, a_name): (&Bound<'py, PyAny>, &str),
    (b, b_name): (&Bound<'py, PyAny>, &str),
    f: fn(&Hash, &Hash) -> Hash,
) -> PyResult<Bound<'py, PyBytes>> {
    Ok(new_bytes(py, &f(&fixed(a, a_name)?, &fixed(b, b_name)?)))
}

#[pyfunction]
#[pyo3(signature = (key, value_hash, /))]
pub fn smt_leaf_hash<'py>(
    py: Python<'py>,
    key: &Bound<'py, PyAny>,
    value_hash: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    hash_two(py, (key, "key"), (value_hash, "value_hash"), smt::leaf_hash)
}

#[pyfunction]
#[pyo3(signature = (left, right, /))]
pub fn smt_node_hash<'py>(
    py: Python<'py>,
    left: &Bound<'py, PyAny>,
    right: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    hash_two(py, (left, "left"), (right, "right"), smt::node_hash)
}
