// The time loops of the fused engine, compiled for the CPU.
//
// Same functions, arguments and buffers as rnnkit/engines/fused_loops.py (the torch-op version,
// which documents the buffers); what compiling buys:
//   * each step's element-wise work is one pass over the step's rows (gates, state, and in the
//     backward pass the pre-activation gradients), vectorised by the compiler (8 floats at a time
//     with AVX2: compiled.py's -fno-trapping-math lets it turn the clamps into blends), instead of
//     a dozen torch ops;
//   * the recurrent product accumulates into the step's slice of the gate buffer, through the
//     routine chosen for this CPU (``use_product``: MKL's packed GEMM, oneDNN's matmul or this
//     file's own FMA kernel, the weight packed once per call, or ATen's addmm, MKL's plain sgemm,
//     with no copy of the weight);
//   * with several threads, each runs the whole time loop for its own block of batch rows
//     (``over_time``): one parallel region per call, none per step;
//   * no Python between steps.
// Layout: every buffer is contiguous, time-major, (T, B, width) or (T + 1, B, n) for states; the
// rows running at step t are the first sizes[t] (the engine sorts the batch by length).

// No jump threading in this file: see exp_approx (the flag is GCC's; other compilers ignore this).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-thread-jumps")
#endif

#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <dlfcn.h>
#if defined(__AVX2__) && defined(__FMA__)  // the build targets AVX2 and FMA: the packed-FMA kernel below exists
#define RNNKIT_PACKED_FMA 1
#include <immintrin.h>
#else
#define RNNKIT_PACKED_FMA 0
#endif

#include <algorithm>
#include <array>
#include <utility>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace {

// ---------------------------------------------------------------------------------------------
// Element-wise math. float: a Cephes-style exp (relative error < 1e-7) written so that the
// compiler vectorises it without -ffast-math; NaN propagates. double: the C library.
//
// Its argument is clamped to [-87, 88], so that e^x stays a normal float. GCC's jump threading
// (-fthread-jumps, on at -O2) would carry those two branches through sigmoid and tanh into constants,
// which the vectorised loop then multiplies with the state in every lane, clamped or not; sigmoid at
// the upper clamp, 1 / (1 + e^88) = 6e-39, is a denormal number, and a denormal operand costs an x86
// core a microcode assist of about a hundred cycles: every vector of the LSTM's forward pass took
// them (16 ns per unit instead of 5.4 on an Intel Xeon; docs/benchmarks.md, "Denormals"). So this file
// is compiled without jump threading (the pragma at its top). Moving the clamp to where the constants
// are normal instead (69) gave saturated gates a slope of 1e-30, which an input of 1e30 turned into a
// false weight gradient of 1; flushing denormals (MXCSR's FTZ and DAZ) was not exact either: a relu
// read a denormal pre-activation as 0.
constexpr float kExpArgumentMin = -87.0f, kExpArgumentMax = 88.0f;

inline float exp_approx(float x) {
  x = x < kExpArgumentMin ? kExpArgumentMin : x;
  x = x > kExpArgumentMax ? kExpArgumentMax : x;
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round(x / ln 2)
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;                // x - n ln 2
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;  // 2^n
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

inline float sigmoid(float x) { return 1.0f / (1.0f + exp_approx(-x)); }

// tanh with a relative error under 2e-7 everywhere (Cephes' tanhf): for |x| >= 0.625,
// 1 - 2 / (e^{2|x|} + 1) with x's sign; below, the odd polynomial x + x³ P(x²). The one formula
// 2 / (1 + e^{-2x}) - 1 cancels: it is 0 for |x| < 3e-8 and loses digits well above, which a
// recurrence that expands small states (Waa = 2) turned into a difference of 100 % from torch.tanh.
inline float tanh_(float x) {
  const float ax = std::fabs(x);
  const float large = 1.0f - 2.0f / (exp_approx(2.0f * ax) + 1.0f);
  const float z = x * x;
  const float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z + 1.33314422036e-1f) * z - 3.33332819422e-1f) * z * x + x;
  return ax >= 0.625f ? std::copysign(large, x) : small;  // NaN: the comparison fails and small is NaN
}
inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
inline double tanh_(double x) { return std::tanh(x); }

// ---------------------------------------------------------------------------------------------
// The recurrent product: C[rows, N] (+)= X[rows, K] @ R for one right factor R (K, N) and many X.
// R is a weight or its transpose (a view): neither is copied. Which routine computes it is a
// per-CPU choice made in compiled.py (``use_product``), measured in docs/benchmarks.md.

using pack_get_size_fn = size_t (*)(int, int, int, int);
using pack_fn = void (*)(int, int, int, int, int, int, float, const float*, int, float*);
using compute_fn = void (*)(int, int, int, int, int, int, const float*, int, const float*, int, float, float*, int);

struct MklPacked {
  pack_get_size_fn get_size = nullptr;
  pack_fn pack = nullptr;
  compute_fn compute = nullptr;
  MklPacked() {
    get_size = reinterpret_cast<pack_get_size_fn>(dlsym(RTLD_DEFAULT, "cblas_sgemm_pack_get_size"));
    pack = reinterpret_cast<pack_fn>(dlsym(RTLD_DEFAULT, "cblas_sgemm_pack"));
    compute = reinterpret_cast<compute_fn>(dlsym(RTLD_DEFAULT, "cblas_sgemm_compute"));
  }
  bool available() const { return get_size && pack && compute; }
};

const MklPacked& mkl() {
  static const MklPacked instance;
  return instance;
}

constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112, kPacked = 151, kBMatrix = 162;

// oneDNN's inner-product kernels as torch registers them for its CPU graph compiler (torch's
// oneDNN symbols are not exported, its operators are): the weight reordered once into oneDNN's
// blocked layout for M rows, then Y = X @ Wᵀ per step. oneDNN's own JIT GEMM, not MKL's, so it keeps
// its speed on CPUs where MKL does not (docs/benchmarks.md, "Other CPUs").
struct OneDnn {
  std::optional<c10::OperatorHandle> reorder, linear;
  OneDnn()
      : reorder(c10::Dispatcher::singleton().findSchema({"mkldnn::_reorder_linear_weight", ""})),
        linear(c10::Dispatcher::singleton().findSchema({"mkldnn::_linear_pointwise", ""})) {}
  bool available() const { return reorder.has_value() && linear.has_value(); }
  // W (N, K) contiguous -> oneDNN's layout of it for products of M rows
  at::Tensor reordered(const at::Tensor& W, int64_t M) const {
    torch::jit::Stack stack{W, c10::IValue(M)};
    reorder->callBoxed(&stack);
    return stack.at(0).toTensor();
  }
  // X (rows, K) @ Wᵀ -> a new (rows, N) tensor
  at::Tensor product(const at::Tensor& X, const at::Tensor& W_reordered) const {
    torch::jit::Stack stack{X, W_reordered, c10::IValue(), c10::IValue(std::string("none")),
                            c10::IValue(c10::List<std::optional<at::Scalar>>()), c10::IValue()};
    linear->callBoxed(&stack);
    return stack.at(0).toTensor();
  }
};

const OneDnn& onednn() {
  static const OneDnn instance;
  return instance;
}

// Below this K·N, oneDNN's cost per call (the operator call, a new output tensor, the pass that adds
// it into the gate buffer) outweighs its faster kernel, and ATen's addmm computes the product: on
// an AMD EPYC Zen 4 the rnn and the course gru were slower through oneDNN at n_a = 256 (products
// of 256 × 256), the cells with wider products faster (docs/benchmarks.md, "Other CPUs").
constexpr int64_t kOneDnnMinimumProduct = 256 * 512;

// ---------------------------------------------------------------------------------------------
// The loops' own product, "packed-fma": a GotoBLAS/BLIS-style kernel (Goto and van de Geijn 2008,
// "Anatomy of high-performance matrix multiplication"; Van Zee and van de Geijn 2015, BLIS) for the
// shape the loops have, few rows (a thread's block of the batch) against a wide weight. R (K, N) is
// packed once per call into panels of two vector registers' width of columns (16 with AVX2, 32 with
// AVX-512), each K × kPanel and contiguous; each step computes C (+)= X @ R a block of at most
// kBlockRows rows by one panel at a time, the block of C held in registers while k runs over a slice
// of K (the panel slice and the rows' slice of X stay in the L1 cache). On an AMD EPYC Zen 3 (AVX2),
// where MKL's sgemm stays well under the FMA units' peak, it makes a training step 12-22 % faster
// than ATen's products do (docs/benchmarks.md, "The loops' own product kernel"); on a Zen 5, whose
// FMA units are 512 bits wide, the AVX-512 build of the same kernel ("Zen 5" there).
// Built only where the compiler targets AVX2 and FMA (-march=native); elsewhere "aten" runs.
constexpr bool kPackedFmaBuilt = RNNKIT_PACKED_FMA;
#if RNNKIT_PACKED_FMA
// One vector register of floats, the widest the build targets: the kernel is written once against it.
#if defined(__AVX512F__)
struct Lanes {
  using V = __m512;
  static constexpr int64_t n = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V load(const float* p) { return _mm512_load_ps(p); }
  static V loadu(const float* p) { return _mm512_loadu_ps(p); }
  static void storeu(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V broadcast(const float* p) { return _mm512_set1_ps(*p); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
};
constexpr int64_t kBlockRows = 12;  // rows of C per register block: 12 × 2 accumulators + 2 of R + 1 of X <= 32
#else
struct Lanes {
  using V = __m256;
  static constexpr int64_t n = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V load(const float* p) { return _mm256_load_ps(p); }
  static V loadu(const float* p) { return _mm256_loadu_ps(p); }
  static void storeu(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V broadcast(const float* p) { return _mm256_broadcast_ss(p); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
};
constexpr int64_t kBlockRows = 6;  // rows of C per register block: 6 × 2 accumulators + 2 of R + 1 of X <= 16
#endif
constexpr int64_t kPanel = 2 * Lanes::n;     // columns of R per panel: two registers
constexpr int64_t kSliceK = 4096 / kPanel;   // k per pass: a 16 KB slice of the panel and at most 6 KB of X in L1

// C[0:MR, 0:kPanel] (+)= X[0:MR, 0:kc] @ panel[0:kc, 0:kPanel]; X, C row-major with leading dimensions ldx, ldc
template <int MR>
inline void fma_block(int64_t kc, const float* X, int64_t ldx, const float* panel, float* C, int64_t ldc, bool accumulate) {
  using V = Lanes::V;
  constexpr int64_t h = Lanes::n;
  V c0[MR], c1[MR];
  _Pragma("GCC unroll 12") for (int i = 0; i < MR; ++i) {  // unrolled: the accumulators stay in registers
    c0[i] = accumulate ? Lanes::loadu(C + i * ldc) : Lanes::zero();
    c1[i] = accumulate ? Lanes::loadu(C + i * ldc + h) : Lanes::zero();
  }
  _Pragma("GCC unroll 4") for (int64_t k = 0; k < kc; ++k) {
    const V r0 = Lanes::load(panel + kPanel * k), r1 = Lanes::load(panel + kPanel * k + h);  // R[k, 0:kPanel]
    _Pragma("GCC unroll 12") for (int i = 0; i < MR; ++i) {
      const V x = Lanes::broadcast(X + i * ldx + k);  // X[i, k] in every lane
      c0[i] = Lanes::fmadd(x, r0, c0[i]);
      c1[i] = Lanes::fmadd(x, r1, c1[i]);
    }
  }
  _Pragma("GCC unroll 12") for (int i = 0; i < MR; ++i) {
    Lanes::storeu(C + i * ldc, c0[i]);
    Lanes::storeu(C + i * ldc + h, c1[i]);
  }
}

// fma_block for m = 1 .. kBlockRows rows: the table of its instantiations, made once at compile time
template <int64_t... M>
constexpr auto fma_blocks(std::integer_sequence<int64_t, M...>) {
  return std::array{&fma_block<static_cast<int>(M + 1)>...};
}
constexpr auto kFmaBlocks = fma_blocks(std::make_integer_sequence<int64_t, kBlockRows>{});

inline void fma_rows(int64_t m, int64_t kc, const float* X, int64_t ldx, const float* panel, float* C, int64_t ldc, bool accumulate) {
  kFmaBlocks[std::clamp<int64_t>(m, 1, kBlockRows) - 1](kc, X, ldx, panel, C, ldc, accumulate);
}

// R (K, N), any strides -> (panels, K, kPanel) float32, the last panel's missing columns zero. Called
// once per call of the loops, outside their parallel region: the threads share one packed copy,
// which halves what they keep in the shared L3 cache and the packing time.
at::Tensor pack_panels(const at::Tensor& R) {
  const int64_t K = R.size(0), N = R.size(1), panels = (N + kPanel - 1) / kPanel;
  at::Tensor packed = at::empty({panels, K, kPanel}, R.options());  // torch's allocator: 64-byte aligned
  if (N % kPanel != 0) packed[panels - 1].zero_();  // the columns past N
  const float* r = R.data_ptr<float>();
  const int64_t sk = R.stride(0), sn = R.stride(1);
  float* out = packed.data_ptr<float>();
  at::parallel_for(0, N, kPanel, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {  // one column of R at a time: contiguous reads when R is a transposed weight
      float* column = out + (n / kPanel) * K * kPanel + n % kPanel;
      for (int64_t k = 0; k < K; ++k) column[k * kPanel] = r[k * sk + n * sn];
    }
  });
  return packed;
}

// C (rows, N) = beta * C + X (rows, K) @ R, R as pack_panels wrote it
void packed_fma(int64_t rows, int64_t K, int64_t N, const float* X, int64_t ldx, const float* packed, float* C, int64_t ldc, float beta) {
  const int64_t blocks = (rows + kBlockRows - 1) / kBlockRows, panels = (N + kPanel - 1) / kPanel;
  if (K == 0 && beta == 0.0f) {  // an empty sum: the loop over K below never writes C
    for (int64_t i = 0; i < rows; ++i) std::fill(C + i * ldc, C + i * ldc + N, 0.0f);
    return;
  }
  // C is a step's slice of a buffer written long before (the gate buffer, by the input product):
  // ask for all its lines now, so that they arrive while the first panels are computed
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < N; j += 16) _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc + j), _MM_HINT_T0);
  alignas(64) float edge[kBlockRows * kPanel];  // the last panel's columns of C when N is no multiple of kPanel
  for (int64_t k0 = 0; k0 < K; k0 += kSliceK) {
    const int64_t kc = std::min(kSliceK, K - k0);
    const bool accumulate = k0 > 0 || beta != 0.0f;
    for (int64_t p = 0; p < panels; ++p) {
      const float* panel = packed + (p * K + k0) * kPanel;
      const int64_t n0 = p * kPanel, width = std::min(kPanel, N - n0);
      for (int64_t b = 0; b < blocks; ++b) {  // blocks of as even a size as possible: 16 rows of AVX2's are 6, 5, 5
        const int64_t i0 = rows * b / blocks, m = rows * (b + 1) / blocks - i0;
        const float* x = X + i0 * ldx + k0;
        float* c = C + i0 * ldc + n0;
        if (width == kPanel) {
          fma_rows(m, kc, x, ldx, panel, c, ldc, accumulate);
          continue;
        }
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < kPanel; ++j) edge[i * kPanel + j] = accumulate && j < width ? c[i * ldc + j] : 0.0f;
        fma_rows(m, kc, x, ldx, panel, edge, kPanel, true);
        for (int64_t i = 0; i < m; ++i) std::memcpy(c + i * ldc, edge + i * kPanel, width * sizeof(float));
      }
    }
  }
}
#endif

// Below this many rows a product is a few rows against the whole weight, bound by reading the weight,
// and ATen's sgemm, which splits it over the threads when one thread runs the loop, computes it.
constexpr int64_t kPackedFmaMinimumRows = 4;

enum class ProductRoutine { kMklPacked, kOneDnn, kPackedFma, kAten };
ProductRoutine product_routine = ProductRoutine::kMklPacked;  // set by use_product()

// Each right factor packed once for all threads where the routine's packing does not depend on the
// rows (packed-fma); undefined tensors otherwise (each thread's Product prepares its own).
template <typename T>
std::vector<at::Tensor> shared_panels(const std::vector<at::Tensor>& rights) {
  std::vector<at::Tensor> panels(rights.size());
#if RNNKIT_PACKED_FMA
  if constexpr (std::is_same_v<T, float>) {
    if (product_routine == ProductRoutine::kPackedFma) {
      at::NoGradGuard no_grad;
      for (size_t k = 0; k < rights.size(); ++k) panels[k] = pack_panels(rights[k]);
    }
  }
#endif
  return panels;
}

template <typename T>
struct Product {
  at::Tensor R;  // (K, N)
  int64_t K, N, M;
  // MKL's packed R, for exactly M rows. MKL asks for at least 7.9 MB whatever the shape (9.2 MB for
  // 512 × 512) and writes a small part: new[] leaves it uninitialised, so only the pages MKL writes are
  // touched, where a zero-filled std::vector spent 0.5 ms per thread and call on the memset
  std::unique_ptr<float[]> packed;
  at::Tensor onednn_weight;   // or oneDNN's reordered Rᵀ
  at::Tensor panels;          // or R in kPanel-column panels for packed_fma; none: ATen's addmm

  // shared: R as shared_panels() packed it for every thread, or undefined
  Product(const at::Tensor& R_, int64_t M_, const at::Tensor& shared) : R(R_), K(R_.size(0)), N(R_.size(1)), M(M_), panels(shared) {
    if constexpr (std::is_same_v<T, float>) {
      if (product_routine == ProductRoutine::kOneDnn && onednn().available() && K * N >= kOneDnnMinimumProduct) {
        onednn_weight = onednn().reordered(R.t().contiguous(), M);  // Rᵀ is the weight itself: no copy in the forward pass
      } else if (product_routine == ProductRoutine::kMklPacked && mkl().available()) {
        const bool transposed = !R.is_contiguous();  // the transpose of a contiguous weight
        const at::Tensor stored = transposed ? R.t().contiguous() : R;  // contiguous(): a no-op
        packed.reset(new float[mkl().get_size(kBMatrix, M, N, K) / sizeof(float) + 1]);
        mkl().pack(kRowMajor, kBMatrix, transposed ? kTrans : kNoTrans, M, N, K, 1.0f, stored.data_ptr<float>(),
                   transposed ? K : N, packed.get());
      }
    }
  }

  // C = beta * C + X @ R, beta 0 or 1; X and C row-major with leading dimensions ldx, ldc.
  void apply(int64_t rows, const T* X, int64_t ldx, T* C, int64_t ldc, float beta) const {
    if (rows == 0) return;
    if constexpr (std::is_same_v<T, float>) {
      if (packed && rows == M) {
        mkl().compute(kRowMajor, kNoTrans, kPacked, M, N, K, X, ldx, packed.get(), K, beta, C, ldc);
        return;
      }
#if RNNKIT_PACKED_FMA
      if (panels.defined() && rows >= kPackedFmaMinimumRows) {
        packed_fma(rows, K, N, X, ldx, panels.data_ptr<float>(), C, ldc, beta);
        return;
      }
#endif
    }
    auto opts = R.options();
    at::Tensor x = at::from_blob(const_cast<T*>(X), {rows, K}, {ldx, 1}, opts);
    at::Tensor c = at::from_blob(C, {rows, N}, {ldc, 1}, opts);
    if (onednn_weight.defined()) {  // oneDNN writes a new tensor: one more pass over (rows, N)
      const at::Tensor y = onednn().product(x.contiguous(), onednn_weight);
      beta == 0.0f ? c.copy_(y) : c.add_(y);
      return;
    }
    if (beta == 0.0f) {
      at::mm_out(c, x, R);
    } else {
      c.addmm_(x, R);
    }
  }
};

// ---------------------------------------------------------------------------------------------
// Buffers, rows and the time loop

// A contiguous time-major buffer (steps, B, width): row(t, i) is row i of step t. States have
// T + 1 steps (slot t holds the state before step t); a (B, width) buffer is one step.
template <typename T>
struct Seq {
  T* data;
  int64_t B, width;
  explicit Seq(const at::Tensor& x) : data(x.data_ptr<T>()), B(x.size(-2)), width(x.size(-1)) {}
  T* row(int64_t t, int64_t i = 0) const { return data + (t * B + i) * width; }
};

struct Rows {  // the batch rows [begin, end) one thread runs at one step
  int64_t begin, end;
  int64_t count() const { return end - begin; }
};

// body(i, j) for every unit j < n of the rows i: one pass, vectorised over j.
template <typename F>
inline void for_units(Rows rows, int64_t n, const F& body) {
  for (int64_t i = rows.begin; i < rows.end; ++i) {
#pragma GCC ivdep
    for (int64_t j = 0; j < n; ++j) body(i, j);
  }
}

// The rows of a batch are independent sequences, so with several threads each runs the whole time
// loop for its own block of rows: its products (single-threaded, on a block of B / threads rows) and
// its element-wise passes, with no barrier between steps. Splitting each step's product over the
// threads instead (what MKL does with one caller) leaves the element-wise pass on one thread and
// makes every step wait for the slowest thread, which on a busy machine is a descheduled one.
// Batches under kRowsPerThread rows per thread run on one thread, whose products MKL splits. The
// packed-FMA kernel splits nothing, and keeps its speed down to kPackedFmaMinimumRows rows: with it
// the threads share batches from that many rows per thread (on an AMD EPYC Zen 3, batches of 8 and
// 12 rows train in 0.55-0.66 × the time of ATen's products split by MKL; docs/benchmarks.md).
constexpr int64_t kRowsPerThread = 8;

// step(t, rows, W) for t = 0 .. T-1 (forward) or T-1 .. 0 (backward), where W holds one Product
// per right factor in `rights`, packed for the calling thread's block of rows.
template <typename T, typename Step>
void over_time(const std::vector<int64_t>& sizes, int64_t B, bool forward, const std::vector<at::Tensor>& rights, const Step& step) {
  const int64_t T_ = static_cast<int64_t>(sizes.size());
  const std::vector<at::Tensor> panels = shared_panels<T>(rights);
  auto block = [&](int64_t begin, int64_t end) {
    at::NoGradGuard no_grad;  // the products read parameters; a worker thread has its own grad mode
    std::vector<Product<T>> W;
    W.reserve(rights.size());
    for (size_t k = 0; k < rights.size(); ++k) W.emplace_back(rights[k], end - begin, panels[k]);
    for (int64_t s = 0; s < T_; ++s) {
      const int64_t t = forward ? s : T_ - 1 - s;
      const Rows rows{begin, std::min(end, sizes[t])};  // sorted by length: running rows are a prefix
      if (rows.count() > 0) step(t, rows, W);
    }
  };
  const bool packed_fma = !panels.empty() && panels.front().defined();
  const int64_t threads = std::min<int64_t>(at::get_num_threads(), B / (packed_fma ? kPackedFmaMinimumRows : kRowsPerThread));
  if (threads <= 1) {
    block(0, B);
  } else {
    at::parallel_for(0, B, (B + threads - 1) / threads, block);
  }
}

constexpr bool kForward = true, kBackward = false;

// ---------------------------------------------------------------------------------------------
// rnn: a<t> = g(Wa[a<t-1>, x<t>] + ba)

// g and its derivative from g's output, as torch's relu and threshold_backward (NaN stays NaN and its
// gradient passes) or tanh. A template parameter rather than a branch per unit: with a run-time flag
// the vectorised pass computed both and blended them, tanh's exp and division included for relu.
template <bool kRelu, typename T>
inline T rnn_activation(T pre) {
  if constexpr (kRelu) return pre <= 0 ? T(0) : pre;
  else return tanh_(pre);
}
template <bool kRelu, typename T>
inline T rnn_activation_backward(T grad, T out) {  // grad · g'(pre), from out = g(pre)
  if constexpr (kRelu) return out <= 0 ? T(0) : grad;
  else return grad * (T(1) - out * out);
}

template <typename T, bool kRelu>
void rnn_forward_impl(at::Tensor G, at::Tensor W_a, at::Tensor A, const std::vector<int64_t>& sizes) {
  const Seq<T> g(G), a(A);
  over_time<T>(sizes, g.B, kForward, {W_a.t()}, [&](int64_t t, Rows rows, const std::vector<Product<T>>& W) {
    W[0].apply(rows.count(), a.row(t, rows.begin), a.width, g.row(t, rows.begin), g.width, 1.0f);  // Waa a<t-1> + (Wax x<t> + ba)
    for_units(rows, a.width, [&](int64_t i, int64_t j) { a.row(t + 1, i)[j] = rnn_activation<kRelu>(g.row(t, i)[j]); });
  });
}

template <typename T, bool kRelu>
void rnn_backward_impl(at::Tensor A, at::Tensor W_a, at::Tensor DA, at::Tensor d_pre, const std::vector<int64_t>& sizes) {
  const Seq<T> a(A), da(DA), dp(d_pre);
  over_time<T>(sizes, dp.B, kBackward, {W_a}, [&](int64_t t, Rows rows, const std::vector<Product<T>>& W) {
    for_units(rows, a.width, [&](int64_t i, int64_t j) {
      dp.row(t, i)[j] = rnn_activation_backward<kRelu>(da.row(t + 1, i)[j], a.row(t + 1, i)[j]);  // da<t> g'(pre<t>)
    });
    W[0].apply(rows.count(), dp.row(t, rows.begin), dp.width, da.row(t, rows.begin), da.width, 1.0f);  // da<t-1> += dpre<t> Waa
  });
}

// ---------------------------------------------------------------------------------------------
// gru-simple: blocks [u c]; c<t> = c<t-1> + Γu (c̃ - c<t-1>)

template <typename T>
void gru_simple_forward_impl(at::Tensor G, at::Tensor W_a, at::Tensor C, const std::vector<int64_t>& sizes) {
  const Seq<T> g(G), c(C);
  const int64_t n = c.width;
  over_time<T>(sizes, g.B, kForward, {W_a.t()}, [&](int64_t t, Rows rows, const std::vector<Product<T>>& W) {
    W[0].apply(rows.count(), c.row(t, rows.begin), n, g.row(t, rows.begin), g.width, 1.0f);  // Wa c<t-1> + (Wx x<t> + b)
    for_units(rows, n, [&](int64_t i, int64_t j) {
      T* gi = g.row(t, i);
      const T u = sigmoid(gi[j]), cand = tanh_(gi[n + j]), cp = c.row(t, i)[j];
      gi[j] = u;
      gi[n + j] = cand;
      c.row(t + 1, i)[j] = cp + u * (cand - cp);
    });
  });
}

template <typename T>
void gru_simple_backward_impl(at::Tensor G, at::Tensor C, at::Tensor W_a, at::Tensor DC, at::Tensor d_pre, const std::vector<int64_t>& sizes) {
  const Seq<T> g(G), c(C), dc(DC), dp(d_pre);
  const int64_t n = c.width;
  over_time<T>(sizes, g.B, kBackward, {W_a}, [&](int64_t t, Rows rows, const std::vector<Product<T>>& W) {
    for_units(rows, n, [&](int64_t i, int64_t j) {
      const T* gi = g.row(t, i);
      T* dpi = dp.row(t, i);
      const T u = gi[j], cand = gi[n + j], d = dc.row(t + 1, i)[j];
      dpi[j] = d * (cand - c.row(t, i)[j]) * u * (T(1) - u);  // dpre_u
      dpi[n + j] = d * u * (T(1) - cand * cand);                // dpre_c
      dc.row(t, i)[j] += (T(1) - u) * d;                         // dc<t-1> += (1-Γu) dc<t>
    });
    W[0].apply(rows.count(), dp.row(t, rows.begin), dp.width, dc.row(t, rows.begin), n, 1.0f);  // ... + dpre<t> Wa
  });
}

// ---------------------------------------------------------------------------------------------
// gru (the course's): blocks [u r c], relevance before the candidate's product

template <typename T>
void gru_forward_impl(at::Tensor G, at::Tensor W_a, at::Tensor C, at::Tensor RC, const std::vector<int64_t>& sizes) {
  const Seq<T> g(G), c(C), rc(RC);
  const int64_t n = c.width;
  const std::vector<at::Tensor> W_ur_cc = {W_a.narrow(0, 0, 2 * n).t(), W_a.narrow(0, 2 * n, n).t()};
  over_time<T>(sizes, g.B, kForward, W_ur_cc, [&](int64_t t, Rows rows, const std::vector<Product<T>>& W) {
    W[0].apply(rows.count(), c.row(t, rows.begin), n, g.row(t, rows.begin), g.width, 1.0f);  // Wu,r [c<t-1>, x<t>] + bu,r
    for_units(rows, n, [&](int64_t i, int64_t j) {
      T* gi = g.row(t, i);
      const T u = sigmoid(gi[j]), r = sigmoid(gi[n + j]);
      gi[j] = u;
      gi[n + j] = r;
      rc.row(t, i)[j] = r * c.row(t, i)[j];  // Γr * c<t-1>
    });
    W[1].apply(rows.count(), rc.row(t, rows.begin), n, g.row(t, rows.begin) + 2 * n, g.width, 1.0f);  // Wc [Γr*c<t-1>, x<t>] + bc
    for_units(rows, n, [&](int64_t i, int64_t j) {
      T* gi = g.row(t, i);
      const T u = gi[j], cand = tanh_(gi[2 * n + j]), cp = c.row(t, i)[j];
      gi[2 * n + j] = cand;
      c.row(t + 1, i)[j] = cp + u * (cand - cp);
    });
  });
}

template <typename T>
void gru_backward_impl(at::Tensor G, at::Tensor C, at::Tensor RC, at::Tensor W_a, at::Tensor DC, at::Tensor d_pre, const std::vector<int64_t>& sizes) {
  const Seq<T> g(G), c(C), dc(DC), dp(d_pre);
  const int64_t n = c.width;
  const at::Tensor D_RC = at::empty({g.B, n}, G.options());  // gradient of Γr * c<t-1>
  const Seq<T> drc(D_RC);
  const std::vector<at::Tensor> W_ur_cc = {W_a.narrow(0, 0, 2 * n), W_a.narrow(0, 2 * n, n)};
  over_time<T>(sizes, g.B, kBackward, W_ur_cc, [&](int64_t t, Rows rows, const std::vector<Product<T>>& W) {
    for_units(rows, n, [&](int64_t i, int64_t j) {
      const T* gi = g.row(t, i);
      T* dpi = dp.row(t, i);
      const T u = gi[j], cand = gi[2 * n + j], d = dc.row(t + 1, i)[j];
      dpi[j] = d * (cand - c.row(t, i)[j]) * u * (T(1) - u);  // dpre_u
      dpi[2 * n + j] = d * u * (T(1) - cand * cand);            // dpre_c
      dc.row(t, i)[j] += (T(1) - u) * d;                         // dc<t-1> += (1-Γu) dc<t>
    });
    W[1].apply(rows.count(), dp.row(t, rows.begin) + 2 * n, dp.width, drc.row(0, rows.begin), n, 0.0f);  // d(Γr*c<t-1>) = dpre_c Wcc
    for_units(rows, n, [&](int64_t i, int64_t j) {
      const T r = g.row(t, i)[n + j], d = drc.row(0, i)[j];
      dp.row(t, i)[n + j] = d * c.row(t, i)[j] * r * (T(1) - r);  // dpre_r
      dc.row(t, i)[j] += r * d;                                    // ... + Γr d(Γr*c)
    });
    W[0].apply(rows.count(), dp.row(t, rows.begin), dp.width, dc.row(t, rows.begin), n, 1.0f);  // ... + dpre_u,r Wu,r
  });
}

// ---------------------------------------------------------------------------------------------
// gru-cudnn: blocks [r u c], relevance after the product, extra bias b_cc

template <typename T>
void gru_cudnn_forward_impl(at::Tensor G, at::Tensor W_a, at::Tensor b_cc, at::Tensor C, at::Tensor HC, const std::vector<int64_t>& sizes) {
  const Seq<T> g(G), c(C), hc(HC);
  const int64_t n = c.width;
  const at::Tensor H = at::empty({g.B, 3 * n}, G.options()), bias = b_cc.contiguous();  // H: Wa c<t-1>
  const Seq<T> h(H);
  const T* bcc = bias.data_ptr<T>();
  over_time<T>(sizes, g.B, kForward, {W_a.t()}, [&](int64_t t, Rows rows, const std::vector<Product<T>>& W) {
    W[0].apply(rows.count(), c.row(t, rows.begin), n, h.row(0, rows.begin), h.width, 0.0f);
    for_units(rows, n, [&](int64_t i, int64_t j) {
      T* gi = g.row(t, i);
      const T* hi = h.row(0, i);
      const T r = sigmoid(gi[j] + hi[j]), u = sigmoid(gi[n + j] + hi[n + j]);
      const T hcc = hi[2 * n + j] + bcc[j];  // Wcc c<t-1> + bcc
      const T cand = tanh_(gi[2 * n + j] + r * hcc), cp = c.row(t, i)[j];
      gi[j] = r;
      gi[n + j] = u;
      gi[2 * n + j] = cand;
      hc.row(t, i)[j] = hcc;
      c.row(t + 1, i)[j] = cp + u * (cand - cp);
    });
  });
}

template <typename T>
void gru_cudnn_backward_impl(at::Tensor G, at::Tensor C, at::Tensor HC, at::Tensor W_a, at::Tensor DC, at::Tensor d_h, at::Tensor d_xc, const std::vector<int64_t>& sizes) {
  const Seq<T> g(G), c(C), hc(HC), dc(DC), dh(d_h), dxc(d_xc);
  const int64_t n = c.width;
  over_time<T>(sizes, g.B, kBackward, {W_a}, [&](int64_t t, Rows rows, const std::vector<Product<T>>& W) {
    for_units(rows, n, [&](int64_t i, int64_t j) {
      const T* gi = g.row(t, i);
      T* dhi = dh.row(t, i);
      const T r = gi[j], u = gi[n + j], cand = gi[2 * n + j], d = dc.row(t + 1, i)[j];
      const T dpc = d * u * (T(1) - cand * cand);                 // dpre_c
      dhi[j] = dpc * hc.row(t, i)[j] * r * (T(1) - r);            // dpre_r
      dhi[n + j] = d * (cand - c.row(t, i)[j]) * u * (T(1) - u);  // dpre_u
      dhi[2 * n + j] = dpc * r;                                   // d(Wcc c + bcc)
      dxc.row(t, i)[j] = dpc;
      dc.row(t, i)[j] += (T(1) - u) * d;                          // dc<t-1> += (1-Γu) dc<t>
    });
    W[0].apply(rows.count(), dh.row(t, rows.begin), dh.width, dc.row(t, rows.begin), n, 1.0f);  // ... + d_h<t> Wa
  });
}

// ---------------------------------------------------------------------------------------------
// lstm: blocks [u f c o]; optional peepholes (3, n): p_u, p_f look at c<t-1>, p_o at c<t>

template <typename T>
void lstm_forward_impl(at::Tensor G, at::Tensor W_a, c10::optional<at::Tensor> peephole, at::Tensor A, at::Tensor C, at::Tensor TC, const std::vector<int64_t>& sizes) {
  const Seq<T> g(G), a(A), c(C), tc(TC);
  const int64_t n = a.width;
  const at::Tensor p = peephole.has_value() ? peephole->contiguous() : at::zeros({3, n}, G.options());
  const T *p_u = p.data_ptr<T>(), *p_f = p_u + n, *p_o = p_u + 2 * n;
  over_time<T>(sizes, g.B, kForward, {W_a.t()}, [&](int64_t t, Rows rows, const std::vector<Product<T>>& W) {
    W[0].apply(rows.count(), a.row(t, rows.begin), n, g.row(t, rows.begin), g.width, 1.0f);  // Wa a<t-1> + (Wx x<t> + b), every block
    for_units(rows, n, [&](int64_t i, int64_t j) {
      T* gi = g.row(t, i);
      const T cp = c.row(t, i)[j];
      const T u = sigmoid(gi[j] + p_u[j] * cp);  // p = 0 without peepholes
      const T f = sigmoid(gi[n + j] + p_f[j] * cp);
      const T cand = tanh_(gi[2 * n + j]);
      const T cn = u * cand + f * cp;  // c<t> = Γu*c̃ + Γf*c<t-1>
      const T o = sigmoid(gi[3 * n + j] + p_o[j] * cn);
      const T tcn = tanh_(cn);
      gi[j] = u;
      gi[n + j] = f;
      gi[2 * n + j] = cand;
      gi[3 * n + j] = o;
      c.row(t + 1, i)[j] = cn;
      tc.row(t, i)[j] = tcn;
      a.row(t + 1, i)[j] = o * tcn;  // a<t> = Γo*tanh(c<t>)
    });
  });
}

template <typename T>
void lstm_backward_impl(at::Tensor G, at::Tensor C, at::Tensor TC, at::Tensor W_a, c10::optional<at::Tensor> peephole, at::Tensor DA, at::Tensor carry_c, at::Tensor d_pre, const std::vector<int64_t>& sizes) {
  const Seq<T> g(G), c(C), tc(TC), da(DA), dcarry(carry_c), dp(d_pre);
  const int64_t n = c.width;
  const at::Tensor p = peephole.has_value() ? peephole->contiguous() : at::zeros({3, n}, G.options());
  const T *p_u = p.data_ptr<T>(), *p_f = p_u + n, *p_o = p_u + 2 * n;
  over_time<T>(sizes, g.B, kBackward, {W_a}, [&](int64_t t, Rows rows, const std::vector<Product<T>>& W) {
    for_units(rows, n, [&](int64_t i, int64_t j) {
      const T* gi = g.row(t, i);
      T *dpi = dp.row(t, i), *dc = dcarry.row(0, i);
      const T u = gi[j], f = gi[n + j], cand = gi[2 * n + j], o = gi[3 * n + j];
      const T tcn = tc.row(t, i)[j], d_a = da.row(t + 1, i)[j];
      const T dpo = d_a * tcn * o * (T(1) - o);                           // dpre_o
      const T d_c = dc[j] + d_a * o * (T(1) - tcn * tcn) + dpo * p_o[j];
      const T dpu = d_c * cand * u * (T(1) - u);                          // dpre_u
      const T dpf = d_c * c.row(t, i)[j] * f * (T(1) - f);                // dpre_f
      dpi[j] = dpu;
      dpi[n + j] = dpf;
      dpi[2 * n + j] = d_c * u * (T(1) - cand * cand);                    // dpre_c
      dpi[3 * n + j] = dpo;
      dc[j] = d_c * f + dpu * p_u[j] + dpf * p_f[j];  // dc<t-1>
    });
    W[0].apply(rows.count(), dp.row(t, rows.begin), dp.width, da.row(t, rows.begin), n, 1.0f);  // da<t-1> += dpre<t> Wa
  });
}

// The peephole weights' gradient after the backward loop, out (3, n) = Σ over steps and rows of
// [dpre_u c<t-1>, dpre_f c<t-1>, dpre_o c<t>]: one streaming pass over d_pre and C, each thread
// summing its own block of steps into its own partial sums, which are then added; three torch ops
// (two products into temporaries, then the sums) read and write several times as much.
template <typename T>
void lstm_peephole_gradient_impl(at::Tensor d_pre, at::Tensor C, at::Tensor out) {
  const Seq<T> dp(d_pre), c(C);
  const int64_t n = c.width, steps = C.size(0) - 1, B = c.B;
  const int64_t threads = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), steps));
  std::vector<T> partial(threads * 3 * n, T(0));  // (threads, 3, n)
  at::parallel_for(0, threads, 1, [&](int64_t first, int64_t last) {
    for (int64_t k = first; k < last; ++k) {
      T* sums = partial.data() + k * 3 * n;
      for (int64_t t = k * steps / threads; t < (k + 1) * steps / threads; ++t) {
        for (int64_t i = 0; i < B; ++i) {
          const T *dpi = dp.row(t, i), *cp = c.row(t, i), *cn = c.row(t + 1, i);
#pragma GCC ivdep
          for (int64_t j = 0; j < n; ++j) {
            sums[j] += dpi[j] * cp[j];                  // dpre_u c<t-1>
            sums[n + j] += dpi[n + j] * cp[j];          // dpre_f c<t-1>
            sums[2 * n + j] += dpi[3 * n + j] * cn[j];  // dpre_o c<t>
          }
        }
      }
    }
  });
  T* result = out.data_ptr<T>();
  for (int64_t j = 0; j < 3 * n; ++j) {
    T total = T(0);
    for (int64_t k = 0; k < threads; ++k) total += partial[k * 3 * n + j];
    result[j] = total;
  }
}

// ---------------------------------------------------------------------------------------------

#define DISPATCH(tensor, name, ...) AT_DISPATCH_FLOATING_TYPES((tensor).scalar_type(), name, [&] { __VA_ARGS__; })

// The loops read every tensor through raw pointers of the dtype they are dispatched on: one of
// another dtype would be read past its end (a float64 weight under a float32 loop corrupted the heap).
template <typename... Tensors>
void check_one_dtype(const char* name, const at::Tensor& first, const Tensors&... rest) {
  for (const at::Tensor* t : {&rest...})
    TORCH_CHECK(t->scalar_type() == first.scalar_type(), name, ": every tensor must be ", first.scalar_type(), ", not ", t->scalar_type());
}

void rnn_forward(at::Tensor G, at::Tensor W_a, at::Tensor A, std::vector<int64_t> sizes, bool relu) {
  check_one_dtype("rnn_forward", G, W_a, A);
  DISPATCH(G, "rnn_forward", relu ? rnn_forward_impl<scalar_t, true>(G, W_a, A, sizes) : rnn_forward_impl<scalar_t, false>(G, W_a, A, sizes));
}
void rnn_backward(at::Tensor A, at::Tensor W_a, at::Tensor DA, at::Tensor d_pre, std::vector<int64_t> sizes, bool relu) {
  check_one_dtype("rnn_backward", A, W_a, DA, d_pre);
  DISPATCH(A, "rnn_backward", relu ? rnn_backward_impl<scalar_t, true>(A, W_a, DA, d_pre, sizes) : rnn_backward_impl<scalar_t, false>(A, W_a, DA, d_pre, sizes));
}
void gru_simple_forward(at::Tensor G, at::Tensor W_a, at::Tensor C, std::vector<int64_t> sizes) {
  check_one_dtype("gru_simple_forward", G, W_a, C);
  DISPATCH(G, "gru_simple_forward", gru_simple_forward_impl<scalar_t>(G, W_a, C, sizes));
}
void gru_simple_backward(at::Tensor G, at::Tensor C, at::Tensor W_a, at::Tensor DC, at::Tensor d_pre, std::vector<int64_t> sizes) {
  check_one_dtype("gru_simple_backward", G, C, W_a, DC, d_pre);
  DISPATCH(G, "gru_simple_backward", gru_simple_backward_impl<scalar_t>(G, C, W_a, DC, d_pre, sizes));
}
void gru_forward(at::Tensor G, at::Tensor W_a, at::Tensor C, at::Tensor RC, std::vector<int64_t> sizes) {
  check_one_dtype("gru_forward", G, W_a, C, RC);
  DISPATCH(G, "gru_forward", gru_forward_impl<scalar_t>(G, W_a, C, RC, sizes));
}
void gru_backward(at::Tensor G, at::Tensor C, at::Tensor RC, at::Tensor W_a, at::Tensor DC, at::Tensor d_pre, std::vector<int64_t> sizes) {
  check_one_dtype("gru_backward", G, C, RC, W_a, DC, d_pre);
  DISPATCH(G, "gru_backward", gru_backward_impl<scalar_t>(G, C, RC, W_a, DC, d_pre, sizes));
}
void gru_cudnn_forward(at::Tensor G, at::Tensor W_a, at::Tensor b_cc, at::Tensor C, at::Tensor HC, std::vector<int64_t> sizes) {
  check_one_dtype("gru_cudnn_forward", G, W_a, b_cc, C, HC);
  DISPATCH(G, "gru_cudnn_forward", gru_cudnn_forward_impl<scalar_t>(G, W_a, b_cc, C, HC, sizes));
}
void gru_cudnn_backward(at::Tensor G, at::Tensor C, at::Tensor HC, at::Tensor W_a, at::Tensor DC, at::Tensor d_h, at::Tensor d_xc, std::vector<int64_t> sizes) {
  check_one_dtype("gru_cudnn_backward", G, C, HC, W_a, DC, d_h, d_xc);
  DISPATCH(G, "gru_cudnn_backward", gru_cudnn_backward_impl<scalar_t>(G, C, HC, W_a, DC, d_h, d_xc, sizes));
}
void lstm_forward(at::Tensor G, at::Tensor W_a, c10::optional<at::Tensor> peephole, at::Tensor A, at::Tensor C, at::Tensor TC, std::vector<int64_t> sizes) {
  check_one_dtype("lstm_forward", G, W_a, peephole.value_or(G), A, C, TC);
  DISPATCH(G, "lstm_forward", lstm_forward_impl<scalar_t>(G, W_a, peephole, A, C, TC, sizes));
}
void lstm_backward(at::Tensor G, at::Tensor C, at::Tensor TC, at::Tensor W_a, c10::optional<at::Tensor> peephole, at::Tensor DA, at::Tensor carry_c, at::Tensor d_pre, std::vector<int64_t> sizes) {
  check_one_dtype("lstm_backward", G, C, TC, W_a, peephole.value_or(G), DA, carry_c, d_pre);
  DISPATCH(G, "lstm_backward", lstm_backward_impl<scalar_t>(G, C, TC, W_a, peephole, DA, carry_c, d_pre, sizes));
}
void lstm_peephole_gradient(at::Tensor d_pre, at::Tensor C, at::Tensor out) {
  TORCH_CHECK(d_pre.is_contiguous() && C.is_contiguous() && out.is_contiguous() && d_pre.dim() == 3 && C.dim() == 3 &&
                  d_pre.size(0) + 1 == C.size(0) && d_pre.size(1) == C.size(1) && d_pre.size(2) == 4 * C.size(2) &&
                  out.dim() == 2 && out.size(0) == 3 && out.size(1) == C.size(2) && d_pre.scalar_type() == C.scalar_type() &&
                  out.scalar_type() == C.scalar_type(),
              "lstm_peephole_gradient: contiguous d_pre (T, B, 4 n), C (T + 1, B, n) and out (3, n) of one dtype");
  DISPATCH(C, "lstm_peephole_gradient", lstm_peephole_gradient_impl<scalar_t>(d_pre, C, out));
}

// benchmarks/core_speed.py's "products only" floor: for `steps` steps, out_k = xs[k] @ rights[k] for
// every k, (B, K_k) @ (K_k, N_k), run exactly as the loops above run their recurrent products (row
// blocks per thread, this CPU's routine) with nothing else, so that fused / floor is what the rest
// of a step costs. Returns the last step's products.
std::vector<at::Tensor> products_only(std::vector<at::Tensor> xs, std::vector<at::Tensor> rights, int64_t steps) {
  TORCH_CHECK(xs.size() == rights.size() && !xs.empty(), "products_only: one input per right factor");
  const int64_t B = xs.at(0).size(0);
  std::vector<at::Tensor> outs;
  for (size_t k = 0; k < rights.size(); ++k) {
    TORCH_CHECK(xs[k].is_contiguous() && xs[k].size(0) == B && xs[k].size(1) == rights[k].size(0), "products_only: xs[", k, "] must be a contiguous (B, K) matrix");
    TORCH_CHECK(xs[k].scalar_type() == at::kFloat && rights[k].scalar_type() == at::kFloat, "products_only: float32 tensors only");
    outs.push_back(at::empty({B, rights[k].size(1)}, xs[k].options()));
  }
  over_time<float>(std::vector<int64_t>(steps, B), B, kForward, rights, [&](int64_t, Rows rows, const std::vector<Product<float>>& W) {
    for (size_t k = 0; k < W.size(); ++k) {
      const int64_t K = W[k].K, N = W[k].N;
      W[k].apply(rows.count(), xs[k].data_ptr<float>() + rows.begin * K, K, outs[k].data_ptr<float>() + rows.begin * N, N, 0.0f);
    }
  });
  return outs;
}

// The routine that computes the float32 recurrent products: the one use_product() asked for, or
// "aten" where it is not available.
std::string product_in_use() {
  if (product_routine == ProductRoutine::kMklPacked && mkl().available()) return "mkl-packed";
  if (product_routine == ProductRoutine::kOneDnn && onednn().available()) return "onednn";
  if (product_routine == ProductRoutine::kPackedFma && kPackedFmaBuilt) return "packed-fma";
  return "aten";
}

// The routine of the float32 recurrent products from now on: "mkl-packed" (falls back to "aten"
// where torch's MKL does not export the packed GEMM), "onednn" (falls back to "aten" where torch
// has no oneDNN), "packed-fma" (falls back to "aten" where the build had no AVX2 and FMA) or
// "aten". Returns the one in use.
std::string use_product(const std::string& name) {
  if (name == "mkl-packed") {
    product_routine = ProductRoutine::kMklPacked;
  } else if (name == "onednn") {
    product_routine = ProductRoutine::kOneDnn;
  } else if (name == "packed-fma") {
    product_routine = ProductRoutine::kPackedFma;
  } else if (name == "aten") {
    product_routine = ProductRoutine::kAten;
  } else {
    TORCH_CHECK(false, "unknown product routine '", name, "' (known: mkl-packed, onednn, packed-fma, aten)");
  }
  return product_in_use();
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("rnn_forward", &rnn_forward);
  m.def("rnn_backward", &rnn_backward);
  m.def("gru_simple_forward", &gru_simple_forward);
  m.def("gru_simple_backward", &gru_simple_backward);
  m.def("gru_forward", &gru_forward);
  m.def("gru_backward", &gru_backward);
  m.def("gru_cudnn_forward", &gru_cudnn_forward);
  m.def("gru_cudnn_backward", &gru_cudnn_backward);
  m.def("lstm_forward", &lstm_forward);
  m.def("lstm_backward", &lstm_backward);
  m.def("lstm_peephole_gradient", &lstm_peephole_gradient);
  m.def("use_product", &use_product);
  m.def("product_in_use", &product_in_use);
  m.def("products_only", &products_only);
}
