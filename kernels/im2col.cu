// im2col and its adjoint col2im, on either side of a convolution's matrix product, one launch each.
//
//   im2col: cols[c, i, j, a, b, n] = x[n, c, a*sh + i - ph, b*sw + j - pw], 0 in the padding
//   col2im: x[n, c, row, col] = sum of cols[c, i, j, a, b, n] over every (i, j, a, b) with
//           row + ph = a*sh + i and col + pw = b*sw + j     (0 <= i < kh, 0 <= a < OH; j, b alike)
//   x (N, C, H, W): im2col reads it through element strides (any layout: refnet's batch_first views
//   have (C, H, W, N) memory); col2im writes it as (C, H, W, N) memory, what refnet returns.
//   cols (C, kh, kw, OH, OW, N), contiguous.
//
// Same semantics as refnet.conv.im2col / col2im; the Python side is kernels/im2col.py.
// One thread per element written, so neither kernel needs atomics: col2im is a gather, each
// output pixel summing the windows that cover it. It adds them in the reference's order
// (i outer, j inner, both ascending, from 0), so its sums round exactly as the reference's do.

template <typename T>
__device__ void im2col(const T* x, long long stride_n, long long stride_c, long long stride_h, long long stride_w,
                       T* cols, long long n, long long c, long long h, long long w,
                       long long kh, long long kw, long long sh, long long sw, long long ph, long long pw,
                       long long oh, long long ow) {
    const long long total = c * kh * kw * oh * ow * n;
    for (long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x; t < total;
         t += (long long)blockDim.x * gridDim.x) {
        // t is the flat index of cols[ch, i, j, a, b, sample]: peel the axes off, last (fastest) first.
        long long rest = t;
        const long long sample = rest % n; rest /= n;
        const long long b = rest % ow; rest /= ow;
        const long long a = rest % oh; rest /= oh;
        const long long j = rest % kw; rest /= kw;
        const long long i = rest % kh;
        const long long ch = rest / kh;
        const long long row = a * sh + i - ph, col = b * sw + j - pw;   // in x's own, unpadded, coordinates
        const bool inside = 0 <= row && row < h && 0 <= col && col < w;
        cols[t] = inside ? x[sample * stride_n + ch * stride_c + row * stride_h + col * stride_w] : T(0);
    }
}

template <typename T>
__device__ void col2im(const T* cols, T* x, long long n, long long c, long long h, long long w,
                       long long kh, long long kw, long long sh, long long sw, long long ph, long long pw,
                       long long oh, long long ow) {
    const long long total = c * h * w * n;
    for (long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x; t < total;
         t += (long long)blockDim.x * gridDim.x) {
        // t is the flat index of x's (C, H, W, N) memory.
        long long rest = t;
        const long long sample = rest % n; rest /= n;
        const long long col = rest % w; rest /= w;
        const long long row = rest % h;
        const long long ch = rest / h;
        const long long prow = row + ph, pcol = col + pw;   // in the padded image, where window row a starts at a*sh
        // Window row a covers prow at kernel row i = prow - a*sh: so i runs over the offsets congruent to
        // prow mod sh, ascending (the reference's order), up to prow itself (a = 0) and below kh.
        T sum = T(0);
        for (long long i = prow % sh; i < kh && i <= prow; i += sh) {
            const long long a = (prow - i) / sh;
            if (a >= oh) continue;      // past the last window row; a larger i may still reach one
            for (long long j = pcol % sw; j < kw && j <= pcol; j += sw) {
                const long long b = (pcol - j) / sw;
                if (b >= ow) continue;
                sum += cols[((((ch * kh + i) * kw + j) * oh + a) * ow + b) * n + sample];
            }
        }
        x[t] = sum;
    }
}

extern "C" __global__ void im2col_f32(const float* x, long long stride_n, long long stride_c, long long stride_h,
                                      long long stride_w, float* cols, long long n, long long c, long long h,
                                      long long w, long long kh, long long kw, long long sh, long long sw,
                                      long long ph, long long pw, long long oh, long long ow) {
    im2col<float>(x, stride_n, stride_c, stride_h, stride_w, cols, n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow);
}
extern "C" __global__ void im2col_f64(const double* x, long long stride_n, long long stride_c, long long stride_h,
                                      long long stride_w, double* cols, long long n, long long c, long long h,
                                      long long w, long long kh, long long kw, long long sh, long long sw,
                                      long long ph, long long pw, long long oh, long long ow) {
    im2col<double>(x, stride_n, stride_c, stride_h, stride_w, cols, n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow);
}
extern "C" __global__ void col2im_f32(const float* cols, float* x, long long n, long long c, long long h,
                                      long long w, long long kh, long long kw, long long sh, long long sw,
                                      long long ph, long long pw, long long oh, long long ow) {
    col2im<float>(cols, x, n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow);
}
extern "C" __global__ void col2im_f64(const double* cols, double* x, long long n, long long c, long long h,
                                      long long w, long long kh, long long kw, long long sh, long long sw,
                                      long long ph, long long pw, long long oh, long long ow) {
    col2im<double>(cols, x, n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow);
}
