// The time loops of the fused engine, compiled for the CPU.
//
// Same functions, arguments and buffers as rnnkit/engines/fused_loops.py (the torch-op version,
// which documents the buffers); what compiling buys:
//   * each step's element-wise work is one pass over the step's rows (gates, state, and in the
//     backward pass the pre-activation gradients), vectorised by the compiler (and split over
//     threads with at::parallel_for for large batches only), instead of a dozen separate torch ops;
//   * the recurrent product accumulates straight into the step's slice of the gate buffer with
//     MKL's packed GEMM (the weight packed once per call, not once per step), when torch's MKL
//     exports it; otherwise ATen's addmm;
//   * no Python between steps.
// Layout: every buffer is contiguous, time-major, (T, B, width) or (T + 1, B, n) for states; the
// rows running at step t are the first sizes[t] (the engine sorts the batch by length).

#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <dlfcn.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

// ---------------------------------------------------------------------------------------------
// Element-wise math. float: a Cephes-style exp (relative error < 1e-7) written so that the
// compiler vectorises it without -ffast-math; NaN propagates. double: the C library.

inline float exp_approx(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
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
inline float tanh_(float x) { return 2.0f / (1.0f + exp_approx(-2.0f * x)) - 1.0f; }
inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
inline double tanh_(double x) { return std::tanh(x); }

// Run body(i) for the rows i in [0, rows) of width n_a, split over threads only when each thread gets
// at least 2^17 of them (rows × n_a; at n_a = 1024, batches over 128 rows). Why so many: a parallel region per step ends in a barrier, and on a machine whose
// cores are busy with other work a descheduled thread holds every step up for its time slice. At
// B=32, n_a=256 splitting the pass saved a few percent on an idle machine but made an LSTM step 50×
// slower (515 ms instead of 10) beside another training run; serial, it is 28–72 ms there, as
// slow as oneDNN's own LSTM (71 ms) under the same load.
template <typename F>
inline void for_rows(int64_t rows, int64_t width, const F& body) {
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 17) / std::max<int64_t>(width, 1));
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) body(i);
  });
}

// ---------------------------------------------------------------------------------------------
// The recurrent product: C[rows, N] (+)= X[rows, K] @ Wᵀ for one weight W (N, K) and many X.

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

template <typename T>
struct Product {
  at::Tensor W_T;  // (K, N), for ATen's addmm
  int64_t N, K, M;
  std::vector<float> packed;  // MKL's packed Wᵀ, for exactly M rows

  Product(const at::Tensor& W, int64_t M_) : N(W.size(0)), K(W.size(1)), M(M_) {
    at::Tensor Wc = W.contiguous();
    W_T = Wc.t().contiguous();
    if constexpr (std::is_same_v<T, float>) {
      if (mkl().available()) {
        packed.resize(mkl().get_size(kBMatrix, M, N, K) / sizeof(float) + 1);
        mkl().pack(kRowMajor, kBMatrix, kTrans, M, N, K, 1.0f, Wc.data_ptr<float>(), K, packed.data());
      }
    }
  }

  // C = beta * C + X @ Wᵀ, beta 0 or 1; X and C row-major with leading dimensions ldx, ldc.
  void apply(int64_t rows, const T* X, int64_t ldx, T* C, int64_t ldc, float beta) const {
    if (rows == 0) return;
    if constexpr (std::is_same_v<T, float>) {
      if (!packed.empty() && rows == M) {
        mkl().compute(kRowMajor, kNoTrans, kPacked, M, N, K, X, ldx, packed.data(), K, beta, C, ldc);
        return;
      }
    }
    auto opts = W_T.options();
    at::Tensor x = at::from_blob(const_cast<T*>(X), {rows, K}, {ldx, 1}, opts);
    at::Tensor c = at::from_blob(C, {rows, N}, {ldc, 1}, opts);
    if (beta == 0.0f) {
      at::mm_out(c, x, W_T);
    } else {
      c.addmm_(x, W_T);
    }
  }
};

template <typename T>
inline T* ptr(const at::Tensor& t) {
  return t.data_ptr<T>();
}

// ---------------------------------------------------------------------------------------------
// rnn: a<t> = g(Wa[a<t-1>, x<t>] + ba)

template <typename T>
void rnn_forward_impl(at::Tensor G, at::Tensor W_a, at::Tensor A, const std::vector<int64_t>& sizes, bool relu) {
  const int64_t T_ = G.size(0), B = G.size(1), n = A.size(2);
  Product<T> W(W_a, B);
  T *g = ptr<T>(G), *a = ptr<T>(A);
  for (int64_t t = 0; t < T_; ++t) {
    const int64_t bs = sizes[t];
    T* g_t = g + t * B * n;
    const T* a_prev = a + t * B * n;
    T* a_t = a + (t + 1) * B * n;
    W.apply(bs, a_prev, n, g_t, n, 1.0f);  // Waa a<t-1> + (Wax x<t> + ba)
    for_rows(bs, n, [&](int64_t i) {
      const T* pre = g_t + i * n;
      T* out = a_t + i * n;
      if (relu) {
#pragma GCC ivdep
        for (int64_t j = 0; j < n; ++j) out[j] = pre[j] > 0 ? pre[j] : T(0);
      } else {
#pragma GCC ivdep
        for (int64_t j = 0; j < n; ++j) out[j] = tanh_(pre[j]);
      }
    });
  }
}

template <typename T>
void rnn_backward_impl(at::Tensor A, at::Tensor W_a, at::Tensor DA, at::Tensor d_pre, const std::vector<int64_t>& sizes, bool relu) {
  const int64_t T_ = d_pre.size(0), B = d_pre.size(1), n = d_pre.size(2);
  Product<T> W_T(W_a.t(), B);
  T *a = ptr<T>(A), *da = ptr<T>(DA), *dp = ptr<T>(d_pre);
  for (int64_t t = T_ - 1; t >= 0; --t) {
    const int64_t bs = sizes[t];
    const T* a_t = a + (t + 1) * B * n;
    const T* da_t = da + (t + 1) * B * n;
    T* dp_t = dp + t * B * n;
    for_rows(bs, n, [&](int64_t i) {
      const T *a_i = a_t + i * n, *da_i = da_t + i * n;
      T* dp_i = dp_t + i * n;
      if (relu) {
#pragma GCC ivdep
        for (int64_t j = 0; j < n; ++j) dp_i[j] = a_i[j] > 0 ? da_i[j] : T(0);
      } else {
#pragma GCC ivdep
        for (int64_t j = 0; j < n; ++j) dp_i[j] = da_i[j] * (T(1) - a_i[j] * a_i[j]);
      }
    });
    W_T.apply(bs, dp_t, n, da + t * B * n, n, 1.0f);  // da<t-1> += dpre<t> Waa
  }
}

// ---------------------------------------------------------------------------------------------
// gru-simple: blocks [u c]; c<t> = c<t-1> + Γu (c̃ - c<t-1>)

template <typename T>
void gru_simple_forward_impl(at::Tensor G, at::Tensor W_a, at::Tensor C, const std::vector<int64_t>& sizes) {
  const int64_t T_ = G.size(0), B = G.size(1), n = C.size(2), w = 2 * n;
  Product<T> W(W_a, B);
  T *g = ptr<T>(G), *c = ptr<T>(C);
  for (int64_t t = 0; t < T_; ++t) {
    const int64_t bs = sizes[t];
    T* g_t = g + t * B * w;
    const T* c_prev = c + t * B * n;
    T* c_t = c + (t + 1) * B * n;
    W.apply(bs, c_prev, n, g_t, w, 1.0f);
    for_rows(bs, n, [&](int64_t i) {
      T* gi = g_t + i * w;
#pragma GCC ivdep
      for (int64_t j = 0; j < n; ++j) {
        const T u = sigmoid(gi[j]), cand = tanh_(gi[n + j]), cp = c_prev[i * n + j];
        gi[j] = u;
        gi[n + j] = cand;
        c_t[i * n + j] = cp + u * (cand - cp);
      }
    });
  }
}

template <typename T>
void gru_simple_backward_impl(at::Tensor G, at::Tensor C, at::Tensor W_a, at::Tensor DC, at::Tensor d_pre, const std::vector<int64_t>& sizes) {
  const int64_t T_ = G.size(0), B = G.size(1), n = C.size(2), w = 2 * n;
  Product<T> W_T(W_a.t(), B);
  T *g = ptr<T>(G), *c = ptr<T>(C), *dc = ptr<T>(DC), *dp = ptr<T>(d_pre);
  for (int64_t t = T_ - 1; t >= 0; --t) {
    const int64_t bs = sizes[t];
    const T* g_t = g + t * B * w;
    const T* c_prev = c + t * B * n;
    const T* dc_t = dc + (t + 1) * B * n;
    T* dc_prev = dc + t * B * n;
    T* dp_t = dp + t * B * w;
    for_rows(bs, n, [&](int64_t i) {
      const T* gi = g_t + i * w;
      T* dpi = dp_t + i * w;
#pragma GCC ivdep
      for (int64_t j = 0; j < n; ++j) {
        const int64_t k = i * n + j;
        const T u = gi[j], cand = gi[n + j], d = dc_t[k];
        dpi[j] = d * (cand - c_prev[k]) * u * (T(1) - u);  // dpre_u
        dpi[n + j] = d * u * (T(1) - cand * cand);         // dpre_c
        dc_prev[k] += (T(1) - u) * d;                      // dc<t-1> += (1-Γu) dc<t>
      }
    });
    W_T.apply(bs, dp_t, w, dc_prev, n, 1.0f);  // ... + dpre<t> Wa
  }
}

// ---------------------------------------------------------------------------------------------
// gru (the course's): blocks [u r c], relevance before the candidate's product

template <typename T>
void gru_forward_impl(at::Tensor G, at::Tensor W_a, at::Tensor C, at::Tensor RC, const std::vector<int64_t>& sizes) {
  const int64_t T_ = G.size(0), B = G.size(1), n = C.size(2), w = 3 * n;
  Product<T> W_ur(W_a.narrow(0, 0, 2 * n), B), W_cc(W_a.narrow(0, 2 * n, n), B);
  T *g = ptr<T>(G), *c = ptr<T>(C), *rc = ptr<T>(RC);
  for (int64_t t = 0; t < T_; ++t) {
    const int64_t bs = sizes[t];
    T* g_t = g + t * B * w;
    const T* c_prev = c + t * B * n;
    T* c_t = c + (t + 1) * B * n;
    T* rc_t = rc + t * B * n;
    W_ur.apply(bs, c_prev, n, g_t, w, 1.0f);  // Wu,r [c<t-1>, x<t>] + bu,r
    for_rows(bs, n, [&](int64_t i) {
      T* gi = g_t + i * w;
#pragma GCC ivdep
      for (int64_t j = 0; j < n; ++j) {
        const T u = sigmoid(gi[j]), r = sigmoid(gi[n + j]);
        gi[j] = u;
        gi[n + j] = r;
        rc_t[i * n + j] = r * c_prev[i * n + j];  // Γr * c<t-1>
      }
    });
    W_cc.apply(bs, rc_t, n, g_t + 2 * n, w, 1.0f);  // Wc [Γr*c<t-1>, x<t>] + bc
    for_rows(bs, n, [&](int64_t i) {
      T* gi = g_t + i * w;
#pragma GCC ivdep
      for (int64_t j = 0; j < n; ++j) {
        const T u = gi[j], cand = tanh_(gi[2 * n + j]), cp = c_prev[i * n + j];
        gi[2 * n + j] = cand;
        c_t[i * n + j] = cp + u * (cand - cp);
      }
    });
  }
}

template <typename T>
void gru_backward_impl(at::Tensor G, at::Tensor C, at::Tensor RC, at::Tensor W_a, at::Tensor DC, at::Tensor d_pre, const std::vector<int64_t>& sizes) {
  const int64_t T_ = G.size(0), B = G.size(1), n = C.size(2), w = 3 * n;
  Product<T> W_ur_T(W_a.narrow(0, 0, 2 * n).t(), B), W_cc_T(W_a.narrow(0, 2 * n, n).t(), B);
  at::Tensor D_RC = at::empty({B, n}, G.options());  // gradient of Γr * c<t-1>
  T *g = ptr<T>(G), *c = ptr<T>(C), *dc = ptr<T>(DC), *dp = ptr<T>(d_pre), *drc = ptr<T>(D_RC);
  for (int64_t t = T_ - 1; t >= 0; --t) {
    const int64_t bs = sizes[t];
    const T* g_t = g + t * B * w;
    const T* c_prev = c + t * B * n;
    const T* dc_t = dc + (t + 1) * B * n;
    T* dc_prev = dc + t * B * n;
    T* dp_t = dp + t * B * w;
    for_rows(bs, n, [&](int64_t i) {
      const T* gi = g_t + i * w;
      T* dpi = dp_t + i * w;
#pragma GCC ivdep
      for (int64_t j = 0; j < n; ++j) {
        const int64_t k = i * n + j;
        const T u = gi[j], cand = gi[2 * n + j], d = dc_t[k];
        dpi[j] = d * (cand - c_prev[k]) * u * (T(1) - u);  // dpre_u
        dpi[2 * n + j] = d * u * (T(1) - cand * cand);     // dpre_c
        dc_prev[k] += (T(1) - u) * d;                      // dc<t-1> += (1-Γu) dc<t>
      }
    });
    W_cc_T.apply(bs, dp_t + 2 * n, w, drc, n, 0.0f);  // d(Γr*c<t-1>) = dpre_c Wcc
    for_rows(bs, n, [&](int64_t i) {
      const T* gi = g_t + i * w;
      T* dpi = dp_t + i * w;
#pragma GCC ivdep
      for (int64_t j = 0; j < n; ++j) {
        const int64_t k = i * n + j;
        const T r = gi[n + j], d = drc[k];
        dpi[n + j] = d * c_prev[k] * r * (T(1) - r);  // dpre_r
        dc_prev[k] += r * d;                          // ... + Γr d(Γr*c)
      }
    });
    W_ur_T.apply(bs, dp_t, w, dc_prev, n, 1.0f);  // ... + dpre_u,r Wu,r
  }
}

// ---------------------------------------------------------------------------------------------
// gru-cudnn: blocks [r u c], relevance after the product, extra bias b_cc

template <typename T>
void gru_cudnn_forward_impl(at::Tensor G, at::Tensor W_a, at::Tensor b_cc, at::Tensor C, at::Tensor HC, const std::vector<int64_t>& sizes) {
  const int64_t T_ = G.size(0), B = G.size(1), n = C.size(2), w = 3 * n;
  Product<T> W(W_a, B);
  at::Tensor H = at::empty({B, w}, G.options());  // Wa c<t-1>
  at::Tensor bias = b_cc.contiguous();
  T *g = ptr<T>(G), *c = ptr<T>(C), *hc = ptr<T>(HC), *h = ptr<T>(H), *bcc = ptr<T>(bias);
  for (int64_t t = 0; t < T_; ++t) {
    const int64_t bs = sizes[t];
    T* g_t = g + t * B * w;
    const T* c_prev = c + t * B * n;
    T* c_t = c + (t + 1) * B * n;
    T* hc_t = hc + t * B * n;
    W.apply(bs, c_prev, n, h, w, 0.0f);
    for_rows(bs, n, [&](int64_t i) {
      T* gi = g_t + i * w;
      const T* hi = h + i * w;
#pragma GCC ivdep
      for (int64_t j = 0; j < n; ++j) {
        const int64_t k = i * n + j;
        const T r = sigmoid(gi[j] + hi[j]), u = sigmoid(gi[n + j] + hi[n + j]);
        const T hcc = hi[2 * n + j] + bcc[j];  // Wcc c<t-1> + bcc
        const T cand = tanh_(gi[2 * n + j] + r * hcc), cp = c_prev[k];
        gi[j] = r;
        gi[n + j] = u;
        gi[2 * n + j] = cand;
        hc_t[k] = hcc;
        c_t[k] = cp + u * (cand - cp);
      }
    });
  }
}

template <typename T>
void gru_cudnn_backward_impl(at::Tensor G, at::Tensor C, at::Tensor HC, at::Tensor W_a, at::Tensor DC, at::Tensor d_h, at::Tensor d_xc, const std::vector<int64_t>& sizes) {
  const int64_t T_ = G.size(0), B = G.size(1), n = C.size(2), w = 3 * n;
  Product<T> W_T(W_a.t(), B);
  T *g = ptr<T>(G), *c = ptr<T>(C), *hc = ptr<T>(HC), *dc = ptr<T>(DC), *dh = ptr<T>(d_h), *dxc = ptr<T>(d_xc);
  for (int64_t t = T_ - 1; t >= 0; --t) {
    const int64_t bs = sizes[t];
    const T* g_t = g + t * B * w;
    const T* c_prev = c + t * B * n;
    const T* hc_t = hc + t * B * n;
    const T* dc_t = dc + (t + 1) * B * n;
    T* dc_prev = dc + t * B * n;
    T* dh_t = dh + t * B * w;
    T* dxc_t = dxc + t * B * n;
    for_rows(bs, n, [&](int64_t i) {
      const T* gi = g_t + i * w;
      T* dhi = dh_t + i * w;
#pragma GCC ivdep
      for (int64_t j = 0; j < n; ++j) {
        const int64_t k = i * n + j;
        const T r = gi[j], u = gi[n + j], cand = gi[2 * n + j], d = dc_t[k];
        const T dpc = d * u * (T(1) - cand * cand);              // dpre_c
        dhi[j] = dpc * hc_t[k] * r * (T(1) - r);                 // dpre_r
        dhi[n + j] = d * (cand - c_prev[k]) * u * (T(1) - u);    // dpre_u
        dhi[2 * n + j] = dpc * r;                                // d(Wcc c + bcc)
        dxc_t[k] = dpc;
        dc_prev[k] += (T(1) - u) * d;                            // dc<t-1> += (1-Γu) dc<t>
      }
    });
    W_T.apply(bs, dh_t, w, dc_prev, n, 1.0f);  // ... + d_h<t> Wa
  }
}

// ---------------------------------------------------------------------------------------------
// lstm: blocks [u f c o]; optional peepholes (3, n): p_u, p_f look at c<t-1>, p_o at c<t>

template <typename T>
void lstm_forward_impl(at::Tensor G, at::Tensor W_a, c10::optional<at::Tensor> peephole, at::Tensor A, at::Tensor C, at::Tensor TC, const std::vector<int64_t>& sizes) {
  const int64_t T_ = G.size(0), B = G.size(1), n = A.size(2), w = 4 * n;
  Product<T> W(W_a, B);
  const bool peep = peephole.has_value();
  at::Tensor p = peep ? peephole->contiguous() : at::zeros({3, n}, G.options());
  T *g = ptr<T>(G), *a = ptr<T>(A), *c = ptr<T>(C), *tc = ptr<T>(TC);
  const T *p_u = ptr<T>(p), *p_f = p_u + n, *p_o = p_u + 2 * n;
  for (int64_t t = 0; t < T_; ++t) {
    const int64_t bs = sizes[t];
    T* g_t = g + t * B * w;
    const T* a_prev = a + t * B * n;
    const T* c_prev = c + t * B * n;
    T* a_t = a + (t + 1) * B * n;
    T* c_t = c + (t + 1) * B * n;
    T* tc_t = tc + t * B * n;
    W.apply(bs, a_prev, n, g_t, w, 1.0f);  // Wa a<t-1> + (Wx x<t> + b), every block
    for_rows(bs, n, [&](int64_t i) {
      T* gi = g_t + i * w;
#pragma GCC ivdep
      for (int64_t j = 0; j < n; ++j) {
        const int64_t k = i * n + j;
        const T cp = c_prev[k];
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
        c_t[k] = cn;
        tc_t[k] = tcn;
        a_t[k] = o * tcn;  // a<t> = Γo*tanh(c<t>)
      }
    });
  }
}

template <typename T>
void lstm_backward_impl(at::Tensor G, at::Tensor C, at::Tensor TC, at::Tensor W_a, c10::optional<at::Tensor> peephole, at::Tensor DA, at::Tensor carry_c, at::Tensor d_pre, const std::vector<int64_t>& sizes) {
  const int64_t T_ = G.size(0), B = G.size(1), n = C.size(2), w = 4 * n;
  Product<T> W_T(W_a.t(), B);
  const bool peep = peephole.has_value();
  at::Tensor p = peep ? peephole->contiguous() : at::zeros({3, n}, G.options());
  T *g = ptr<T>(G), *c = ptr<T>(C), *tc = ptr<T>(TC), *da = ptr<T>(DA), *dcarry = ptr<T>(carry_c), *dp = ptr<T>(d_pre);
  const T *p_u = ptr<T>(p), *p_f = p_u + n, *p_o = p_u + 2 * n;
  for (int64_t t = T_ - 1; t >= 0; --t) {
    const int64_t bs = sizes[t];
    const T* g_t = g + t * B * w;
    const T* c_prev = c + t * B * n;
    const T* tc_t = tc + t * B * n;
    const T* da_t = da + (t + 1) * B * n;
    T* dp_t = dp + t * B * w;
    for_rows(bs, n, [&](int64_t i) {
      const T* gi = g_t + i * w;
      T* dpi = dp_t + i * w;
#pragma GCC ivdep
      for (int64_t j = 0; j < n; ++j) {
        const int64_t k = i * n + j;
        const T u = gi[j], f = gi[n + j], cand = gi[2 * n + j], o = gi[3 * n + j];
        const T tcn = tc_t[k], d_a = da_t[k];
        const T dpo = d_a * tcn * o * (T(1) - o);                                  // dpre_o
        const T d_c = dcarry[k] + d_a * o * (T(1) - tcn * tcn) + dpo * p_o[j];
        const T dpu = d_c * cand * u * (T(1) - u);                                 // dpre_u
        const T dpf = d_c * c_prev[k] * f * (T(1) - f);                            // dpre_f
        dpi[j] = dpu;
        dpi[n + j] = dpf;
        dpi[2 * n + j] = d_c * u * (T(1) - cand * cand);                           // dpre_c
        dpi[3 * n + j] = dpo;
        dcarry[k] = d_c * f + dpu * p_u[j] + dpf * p_f[j];  // dc<t-1>
      }
    });
    W_T.apply(bs, dp_t, w, da + t * B * n, n, 1.0f);  // da<t-1> += dpre<t> Wa
  }
}

// ---------------------------------------------------------------------------------------------

#define DISPATCH(tensor, name, ...) AT_DISPATCH_FLOATING_TYPES((tensor).scalar_type(), name, [&] { __VA_ARGS__; })

void rnn_forward(at::Tensor G, at::Tensor W_a, at::Tensor A, std::vector<int64_t> sizes, bool relu) {
  DISPATCH(G, "rnn_forward", rnn_forward_impl<scalar_t>(G, W_a, A, sizes, relu));
}
void rnn_backward(at::Tensor A, at::Tensor W_a, at::Tensor DA, at::Tensor d_pre, std::vector<int64_t> sizes, bool relu) {
  DISPATCH(A, "rnn_backward", rnn_backward_impl<scalar_t>(A, W_a, DA, d_pre, sizes, relu));
}
void gru_simple_forward(at::Tensor G, at::Tensor W_a, at::Tensor C, std::vector<int64_t> sizes) {
  DISPATCH(G, "gru_simple_forward", gru_simple_forward_impl<scalar_t>(G, W_a, C, sizes));
}
void gru_simple_backward(at::Tensor G, at::Tensor C, at::Tensor W_a, at::Tensor DC, at::Tensor d_pre, std::vector<int64_t> sizes) {
  DISPATCH(G, "gru_simple_backward", gru_simple_backward_impl<scalar_t>(G, C, W_a, DC, d_pre, sizes));
}
void gru_forward(at::Tensor G, at::Tensor W_a, at::Tensor C, at::Tensor RC, std::vector<int64_t> sizes) {
  DISPATCH(G, "gru_forward", gru_forward_impl<scalar_t>(G, W_a, C, RC, sizes));
}
void gru_backward(at::Tensor G, at::Tensor C, at::Tensor RC, at::Tensor W_a, at::Tensor DC, at::Tensor d_pre, std::vector<int64_t> sizes) {
  DISPATCH(G, "gru_backward", gru_backward_impl<scalar_t>(G, C, RC, W_a, DC, d_pre, sizes));
}
void gru_cudnn_forward(at::Tensor G, at::Tensor W_a, at::Tensor b_cc, at::Tensor C, at::Tensor HC, std::vector<int64_t> sizes) {
  DISPATCH(G, "gru_cudnn_forward", gru_cudnn_forward_impl<scalar_t>(G, W_a, b_cc, C, HC, sizes));
}
void gru_cudnn_backward(at::Tensor G, at::Tensor C, at::Tensor HC, at::Tensor W_a, at::Tensor DC, at::Tensor d_h, at::Tensor d_xc, std::vector<int64_t> sizes) {
  DISPATCH(G, "gru_cudnn_backward", gru_cudnn_backward_impl<scalar_t>(G, C, HC, W_a, DC, d_h, d_xc, sizes));
}
void lstm_forward(at::Tensor G, at::Tensor W_a, c10::optional<at::Tensor> peephole, at::Tensor A, at::Tensor C, at::Tensor TC, std::vector<int64_t> sizes) {
  DISPATCH(G, "lstm_forward", lstm_forward_impl<scalar_t>(G, W_a, peephole, A, C, TC, sizes));
}
void lstm_backward(at::Tensor G, at::Tensor C, at::Tensor TC, at::Tensor W_a, c10::optional<at::Tensor> peephole, at::Tensor DA, at::Tensor carry_c, at::Tensor d_pre, std::vector<int64_t> sizes) {
  DISPATCH(G, "lstm_backward", lstm_backward_impl<scalar_t>(G, C, TC, W_a, peephole, DA, carry_c, d_pre, sizes));
}

bool mkl_packed_gemm() { return mkl().available(); }

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
  m.def("mkl_packed_gemm", &mkl_packed_gemm);
}
