//! RFC 9162 §2.1 Merkle trees: leaf and node hashing, roots computed in O(log n) memory, audit
//! (inclusion) and consistency proofs built from any source of perfect-subtree hashes, and their
//! verification.

use aws_lc_rs::digest::{Context, SHA256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

fn sha256(parts: &[&[u8]]) -> Hash {
    let mut c = Context::new(&SHA256);
    for p in parts {
        c.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(c.finish().as_ref());
    out
}

/// The hash of a leaf: SHA-256(0x00 || data).
#[must_use]
pub fn leaf_hash(data: &[u8]) -> Hash {
    sha256(&[&[0x00], data])
}

/// The hash of an interior node: SHA-256(0x01 || left || right).
#[must_use]
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    sha256(&[&[0x01], left, right])
}

/// The root of the empty tree: SHA-256 of the empty string.
#[must_use]
pub fn empty_root() -> Hash {
    sha256(&[])
}

/// The largest power of two strictly less than `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (n - 1).ilog2()
}

/// Folds leaf hashes into a root as they stream past, keeping one hash per level.
#[derive(Debug, Clone, Default)]
pub struct Accumulator {
    /// Perfect subtrees, left to right, strictly decreasing in height.
    stack: Vec<(u32, Hash)>,
    size: u64,
}

impl Accumulator {
    /// An empty tree.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a leaf hash. Returns the perfect subtrees completed by it, as (level, index,
    /// hash), level ≥ 1 — what a node store keeps so proofs need O(log n) look-ups.
    pub fn push(&mut self, leaf: Hash) -> Vec<(u32, u64, Hash)> {
        let mut completed = Vec::new();
        let mut cur = (0u32, leaf);
        let index = self.size;
        while let Some(&(level, left)) = self.stack.last() {
            if level != cur.0 {
                break;
            }
            self.stack.pop();
            cur = (level + 1, node_hash(&left, &cur.1));
            completed.push((cur.0, index >> cur.0, cur.1));
        }
        self.stack.push(cur);
        self.size += 1;
        completed
    }

    /// Resumes a tree of `size` leaves from its right frontier: the hashes of the perfect
    /// subtrees for each set bit of `size`, largest first (as [`Accumulator::frontier`] lists them).
    ///
    /// # Errors
    /// When the number of hashes does not match `size`.
    pub fn from_frontier(size: u64, hashes: &[Hash]) -> Result<Self, &'static str> {
        let levels = frontier_levels(size);
        if levels.len() != hashes.len() {
            return Err("frontier does not match the tree size");
        }
        Ok(Self { stack: levels.into_iter().map(|(level, _)| level).zip(hashes.iter().copied()).collect(), size })
    }

    /// Leaves so far.
    #[must_use]
    pub const fn size(&self) -> u64 {
        self.size
    }

    /// The root of the tree so far (RFC 9162 MTH).
    #[must_use]
    pub fn root(&self) -> Hash {
        let mut iter = self.stack.iter().rev();
        let Some(&(_, mut acc)) = iter.next() else { return empty_root() };
        for (_, left) in iter {
            acc = node_hash(left, &acc);
        }
        acc
    }
}

/// The perfect subtrees on the right edge of a tree of `size` leaves, largest first, as
/// (level, index).
#[must_use]
pub fn frontier_levels(size: u64) -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    let mut start = 0u64;
    for level in (0..64u32).rev() {
        if size & (1u64 << level) != 0 {
            out.push((level, start >> level));
            start += 1u64 << level;
        }
    }
    out
}

/// Where proofs get subtree hashes from: the hash of the perfect subtree of `2^level` leaves
/// starting at leaf `index << level`. Level 0 is a leaf hash.
pub trait Nodes {
    /// The error a look-up may fail with.
    type Error;
    /// The perfect subtree's hash.
    ///
    /// # Errors
    /// When the hash cannot be read.
    fn perfect(&mut self, level: u32, index: u64) -> Result<Hash, Self::Error>;
}

/// MTH of leaves `[start, end)`, `start` aligned to the subtree (as every range in RFC 9162's
/// recursions is).
///
/// # Errors
/// When a node cannot be read.
pub fn subtree_root<N: Nodes>(nodes: &mut N, start: u64, end: u64) -> Result<Hash, N::Error> {
    let n = end - start;
    if n == 0 {
        return Ok(empty_root());
    }
    if n.is_power_of_two() && start.is_multiple_of(n) {
        let level = n.trailing_zeros();
        return nodes.perfect(level, start >> level);
    }
    let k = split(n);
    let left = subtree_root(nodes, start, start + k)?;
    let right = subtree_root(nodes, start + k, end)?;
    Ok(node_hash(&left, &right))
}

/// The audit path for leaf `m` in the tree of the first `n` leaves (RFC 9162 §2.1.3.1).
///
/// # Errors
/// When a node cannot be read. `m < n` is the caller's to check.
pub fn inclusion_proof<N: Nodes>(nodes: &mut N, m: u64, n: u64) -> Result<Vec<Hash>, N::Error> {
    fn path<N: Nodes>(nodes: &mut N, m: u64, start: u64, end: u64, out: &mut Vec<Hash>) -> Result<(), N::Error> {
        let n = end - start;
        if n <= 1 {
            return Ok(());
        }
        let k = split(n);
        if m - start < k {
            path(nodes, m, start, start + k, out)?;
            out.push(subtree_root(nodes, start + k, end)?);
        } else {
            path(nodes, m, start + k, end, out)?;
            out.push(subtree_root(nodes, start, start + k)?);
        }
        Ok(())
    }
    let mut out = Vec::new();
    path(nodes, m, 0, n, &mut out)?;
    Ok(out)
}

/// The consistency proof between the trees of the first `m` and `n` leaves (RFC 9162 §2.1.4.1).
///
/// # Errors
/// When a node cannot be read. `0 < m <= n` is the caller's to check.
pub fn consistency_proof<N: Nodes>(nodes: &mut N, m: u64, n: u64) -> Result<Vec<Hash>, N::Error> {
    fn sub<N: Nodes>(
        nodes: &mut N,
        m: u64,
        start: u64,
        end: u64,
        whole: bool,
        out: &mut Vec<Hash>,
    ) -> Result<(), N::Error> {
        let n = end - start;
        if m == n {
            if !whole {
                out.push(subtree_root(nodes, start, end)?);
            }
            return Ok(());
        }
        let k = split(n);
        if m <= k {
            sub(nodes, m, start, start + k, whole, out)?;
            out.push(subtree_root(nodes, start + k, end)?);
        } else {
            sub(nodes, m - k, start + k, end, false, out)?;
            out.push(subtree_root(nodes, start, start + k)?);
        }
        Ok(())
    }
    let mut out = Vec::new();
    if m > 0 && m < n {
        sub(nodes, m, 0, n, true, &mut out)?;
    }
    Ok(out)
}

/// Verifies an inclusion proof (RFC 9162 §2.1.3.2).
#[must_use]
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && r == *root
}

/// Verifies a consistency proof between `(old_size, old_root)` and `(new_size, new_root)`
/// (RFC 9162 §2.1.4.2).
#[must_use]
pub fn verify_consistency(old_size: u64, new_size: u64, old_root: &Hash, new_root: &Hash, proof: &[Hash]) -> bool {
    if old_size > new_size {
        return false;
    }
    if old_size == new_size {
        return proof.is_empty() && old_root == new_root;
    }
    if old_size == 0 {
        return proof.is_empty();
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else { return false };
    let (mut fnode, mut snode) = (old_size - 1, new_size - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && fr == *old_root && sr == *new_root
}

/// Perfect-subtree hashes held in memory (for tests and small tools).
#[derive(Debug, Default, Clone)]
pub struct MemoryNodes {
    levels: Vec<Vec<Hash>>,
}

impl MemoryNodes {
    /// Builds the node store for these leaf hashes.
    #[must_use]
    pub fn from_leaves(leaves: &[Hash]) -> Self {
        let mut levels = vec![leaves.to_vec()];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let prev = levels.last().map(Vec::as_slice).unwrap_or_default();
            let next: Vec<Hash> = prev.chunks_exact(2).map(|c| node_hash(&c[0], &c[1])).collect();
            levels.push(next);
        }
        Self { levels }
    }
}

/// A node was asked for that the store does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no node at level {0}, index {1}")]
pub struct MissingNode(pub u32, pub u64);

impl Nodes for MemoryNodes {
    type Error = MissingNode;
    fn perfect(&mut self, level: u32, index: u64) -> Result<Hash, MissingNode> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.levels.get(level as usize)?.get(i).copied())
            .ok_or(MissingNode(level, index))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]
    use super::*;
    use proptest::prelude::*;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(format!("leaf {i}").as_bytes())).collect()
    }

    /// RFC 9162's definition, literally: the independent reference the fast code is checked against.
    fn mth(d: &[Hash]) -> Hash {
        match d.len() {
            0 => empty_root(),
            1 => d[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&mth(&d[..k]), &mth(&d[k..]))
            }
        }
    }

    #[test]
    fn known_roots() {
        assert_eq!(hex(&empty_root()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        // RFC 6962 test vector: the leaf hash of the empty string.
        assert_eq!(hex(&leaf_hash(b"")), "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
    }

    fn hex(h: &Hash) -> String {
        h.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().concat()
    }

    proptest! {
        #[test]
        fn accumulator_matches_the_definition(n in 0u64..300) {
            let l = leaves(n);
            let mut acc = Accumulator::new();
            let mut nodes = Vec::new();
            for h in &l {
                nodes.extend(acc.push(*h));
            }
            prop_assert_eq!(acc.root(), mth(&l));
            // Every completed node is the perfect subtree it claims to be.
            for (level, index, hash) in nodes {
                let start = (index << level) as usize;
                prop_assert_eq!(hash, mth(&l[start..start + (1 << level)]));
            }
        }

        #[test]
        fn a_tree_resumes_from_its_frontier(n in 0u64..200, more in 0u64..50) {
            let l = leaves(n + more);
            let mut store = MemoryNodes::from_leaves(&l[..n as usize]);
            let frontier: Vec<Hash> = frontier_levels(n).into_iter().map(|(lv, i)| store.perfect(lv, i).unwrap()).collect();
            let mut acc = Accumulator::from_frontier(n, &frontier).unwrap();
            for h in &l[n as usize..] {
                acc.push(*h);
            }
            prop_assert_eq!(acc.root(), mth(&l));
        }

        #[test]
        fn inclusion_proofs_verify_and_wrong_ones_do_not(n in 1u64..200, m_seed in 0u64..1000) {
            let l = leaves(n);
            let m = m_seed % n;
            let mut store = MemoryNodes::from_leaves(&l);
            let proof = inclusion_proof(&mut store, m, n).unwrap();
            let root = mth(&l);
            prop_assert!(verify_inclusion(&l[m as usize], m, n, &proof, &root));
            prop_assert!(!verify_inclusion(&leaf_hash(b"other"), m, n, &proof, &root));
            if n > 1 {
                prop_assert!(!verify_inclusion(&l[m as usize], (m + 1) % n, n, &proof, &root));
            }
        }

        #[test]
        fn consistency_proofs_verify_and_wrong_ones_do_not(n in 1u64..200, m_seed in 0u64..1000) {
            let l = leaves(n);
            let m = 1 + m_seed % n;
            let mut store = MemoryNodes::from_leaves(&l);
            let proof = consistency_proof(&mut store, m, n).unwrap();
            let (old, new) = (mth(&l[..m as usize]), mth(&l));
            prop_assert!(verify_consistency(m, n, &old, &new, &proof));
            prop_assert!(!verify_consistency(m, n, &leaf_hash(b"x"), &new, &proof));
            if m < n {
                let mut forked = l.clone();
                forked[(m - 1) as usize] = leaf_hash(b"rewritten");
                prop_assert!(!verify_consistency(m, n, &old, &mth(&forked), &proof));
            }
        }
    }
}
