//! Owned buffers for the parts of a space, `n` rows each, and the borrowed views
//! ([`ArrayRef`], [`ArrayMut`]) the ABI takes. Zero-copy: a view points into the buffer.

use metarl_plugin_api::types::{ArrayMut, ArrayRef, Dtype, Space};

/// The elements of one part.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// `u8` elements.
    U8(Vec<u8>),
    /// `f32` elements.
    F32(Vec<f32>),
    /// `i32` elements.
    I32(Vec<i32>),
}

impl Data {
    fn zeros(dtype: Dtype, len: usize) -> Self {
        match dtype {
            Dtype::U8 => Data::U8(vec![0; len]),
            Dtype::I32 => Data::I32(vec![0; len]),
            _ => Data::F32(vec![0.0; len]),
        }
    }
    /// A view.
    pub fn view(&self) -> ArrayRef<'_> {
        match self {
            Data::U8(v) => ArrayRef::new(v),
            Data::F32(v) => ArrayRef::new(v),
            Data::I32(v) => ArrayRef::new(v),
        }
    }
    /// A mutable view.
    pub fn view_mut(&mut self) -> ArrayMut<'_> {
        match self {
            Data::U8(v) => ArrayMut::new(v),
            Data::F32(v) => ArrayMut::new(v),
            Data::I32(v) => ArrayMut::new(v),
        }
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Data::U8(v) => v.len(),
            Data::F32(v) => v.len(),
            Data::I32(v) => v.len(),
        }
    }
    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Copies elements `range` of `from` (same dtype) into the same range of `self`.
    fn copy_range(&mut self, from: &Data, range: std::ops::Range<usize>) {
        match (self, from) {
            (Data::U8(a), Data::U8(b)) => a[range.clone()].copy_from_slice(&b[range]),
            (Data::F32(a), Data::F32(b)) => a[range.clone()].copy_from_slice(&b[range]),
            (Data::I32(a), Data::I32(b)) => a[range.clone()].copy_from_slice(&b[range]),
            _ => {}
        }
    }
    /// Sets elements `range` to zero.
    fn zero_range(&mut self, range: std::ops::Range<usize>) {
        match self {
            Data::U8(a) => a[range].fill(0),
            Data::F32(a) => a[range].fill(0.0),
            Data::I32(a) => a[range].fill(0),
        }
    }
}

/// `n` rows of every part of a space.
#[derive(Debug, Clone, PartialEq)]
pub struct SpaceBuf {
    /// One entry per part, in the space's order.
    pub parts: Vec<Data>,
    numel: Vec<usize>,
    /// Rows.
    pub n: usize,
}

impl SpaceBuf {
    /// Zeroed buffers for `n` rows of `space`.
    pub fn zeros(space: &Space, n: usize) -> Self {
        let numel: Vec<usize> = space.parts.iter().map(|p| p.numel()).collect();
        let parts = space.parts.iter().zip(&numel).map(|(p, &k)| Data::zeros(p.dtype, k * n)).collect();
        Self { parts, numel, n }
    }
    /// Views of every part, for an ABI call.
    pub fn views(&self) -> Vec<ArrayRef<'_>> {
        self.parts.iter().map(Data::view).collect()
    }
    /// Mutable views of every part, for an ABI call.
    pub fn views_mut(&mut self) -> Vec<ArrayMut<'_>> {
        self.parts.iter_mut().map(Data::view_mut).collect()
    }
    /// Copies row `row` of every part from `from` (a buffer of the same space).
    pub fn copy_row(&mut self, from: &SpaceBuf, row: usize) {
        for ((a, b), &k) in self.parts.iter_mut().zip(&from.parts).zip(&self.numel) {
            a.copy_range(b, row * k..(row + 1) * k);
        }
    }
    /// Zeroes row `row` of every part.
    pub fn zero_row(&mut self, row: usize) {
        for (a, &k) in self.parts.iter_mut().zip(&self.numel) {
            a.zero_range(row * k..(row + 1) * k);
        }
    }
    /// Elements per row of part `i`.
    pub fn numel(&self, i: usize) -> usize {
        self.numel[i]
    }
    /// Copies row `src_row` of `src` (one array of part `part`'s dtype, rows of that part's
    /// size) into row `row` of part `part`; false if the dtype differs or the row is outside
    /// `src`.
    pub fn copy_row_from(&mut self, part: usize, row: usize, src: ArrayRef<'_>, src_row: usize) -> bool {
        let k = self.numel[part];
        let (to, from) = (row * k..(row + 1) * k, src_row * k..(src_row + 1) * k);
        match &mut self.parts[part] {
            Data::U8(a) => src.u8().and_then(|b| b.get(from)).map(|b| a[to].copy_from_slice(b)).is_some(),
            Data::F32(a) => src.f32().and_then(|b| b.get(from)).map(|b| a[to].copy_from_slice(b)).is_some(),
            Data::I32(a) => src.i32().and_then(|b| b.get(from)).map(|b| a[to].copy_from_slice(b)).is_some(),
        }
    }
}
