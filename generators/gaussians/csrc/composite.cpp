// Front-to-back compositing of depth-sorted screen-space Gaussians on the CPU, forward and backward.
//
// Why C++: the pure-torch compositor (composite.py) spends its time in dozens of whole-array passes
// over ~10^6 (Gaussian, pixel) pairs; here each pair is touched once per pass, in cache, and 16x16
// tiles run on worker threads. Same rules as composite.py and gsplat "classic": pixel centres at
// +0.5, sigma = 0.5(a dx^2 + c dy^2) + b dx dy, alpha = min(alpha_max, o exp(-sigma)), pairs with
// sigma < 0 or alpha < 1/255 skipped, a pixel stops before the pair that would bring its
// transmittance to 1e-4 or below.
//
// Loop order: per tile, Gaussians in depth order (outer) and, on each of the Gaussian's pixel rows
// inside the tile, the exact x-interval where alpha can reach 1/255 (inner). Each pixel still sees
// its Gaussians front to back. Determinism: every tile writes only its own pixels and its own
// (tile, Gaussian) gradient slots; the slots are summed per Gaussian afterwards in a fixed order, so
// results do not depend on the number of threads.
//
// Plain C ABI (called through ctypes): no Python or torch headers, so it compiles in about a second.

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <thread>
#include <vector>

namespace {

constexpr int TILE = 16;
constexpr double ALPHA_MIN = 1.0 / 255.0;
constexpr double T_MIN = 1e-4;
constexpr double SPAN_EPS = 1e-3;  // widen exact intervals a little; the alpha test trims them back

template <typename T>
struct Scene {
  const T* means2d;  // [M, 2]
  const T* conics;   // [M, 3]
  const T* opac;     // [M]
  const T* colors;   // [M, D]
  int64_t M, D;
  int W, H;
  T alpha_max;
};

// Pixel extent of one Gaussian where o exp(-sigma) >= 1/255, or empty.
struct Extent {
  int x0, x1, y0, y1;  // inclusive pixel bounds; empty if x1 < x0 or y1 < y0
  double tau, det;
};

template <typename T>
Extent extent(const Scene<T>& s, int64_t g) {
  Extent e{0, -1, 0, -1, 0.0, 0.0};
  const double a = s.conics[3 * g], b = s.conics[3 * g + 1], c = s.conics[3 * g + 2];
  const double o = s.opac[g];
  if (!(o > 0.0) || !(a > 0.0)) return e;
  e.tau = std::log(o * 255.0);
  if (!(e.tau > 0.0)) return e;
  e.det = std::max(a * c - b * b, 1e-30);
  const double mx = s.means2d[2 * g], my = s.means2d[2 * g + 1];
  const double hh = std::sqrt(2.0 * e.tau * a / e.det), hw = std::sqrt(2.0 * e.tau * c / e.det);
  e.y0 = (int)std::max(0.0, std::ceil(my - hh - 0.5 - SPAN_EPS));
  e.y1 = (int)std::min((double)s.H - 1, std::floor(my + hh - 0.5 + SPAN_EPS));
  e.x0 = (int)std::max(0.0, std::ceil(mx - hw - 0.5 - SPAN_EPS));
  e.x1 = (int)std::min((double)s.W - 1, std::floor(mx + hw - 0.5 + SPAN_EPS));
  return e;
}

// Per tile, its Gaussians in depth (input) order: CSR offsets [tiles+1] and Gaussian ids.
struct TileLists {
  int tw, th;
  std::vector<int64_t> offsets;
  std::vector<int32_t> gauss;
  std::vector<Extent> ext;
};

template <typename T>
TileLists tile_lists(const Scene<T>& s) {
  TileLists t;
  t.tw = (s.W + TILE - 1) / TILE;
  t.th = (s.H + TILE - 1) / TILE;
  const int64_t ntiles = (int64_t)t.tw * t.th;
  t.ext.resize(s.M);
  t.offsets.assign(ntiles + 1, 0);
  for (int64_t g = 0; g < s.M; ++g) {
    const Extent e = extent(s, g);
    t.ext[g] = e;
    if (e.x1 < e.x0 || e.y1 < e.y0) continue;
    for (int ty = e.y0 / TILE; ty <= e.y1 / TILE; ++ty)
      for (int tx = e.x0 / TILE; tx <= e.x1 / TILE; ++tx) ++t.offsets[(int64_t)ty * t.tw + tx + 1];
  }
  for (int64_t i = 0; i < ntiles; ++i) t.offsets[i + 1] += t.offsets[i];
  t.gauss.resize(t.offsets[ntiles]);
  std::vector<int64_t> fill(t.offsets.begin(), t.offsets.end() - 1);
  for (int64_t g = 0; g < s.M; ++g) {
    const Extent& e = t.ext[g];
    if (e.x1 < e.x0 || e.y1 < e.y0) continue;
    for (int ty = e.y0 / TILE; ty <= e.y1 / TILE; ++ty)
      for (int tx = e.x0 / TILE; tx <= e.x1 / TILE; ++tx) t.gauss[fill[(int64_t)ty * t.tw + tx]++] = (int32_t)g;
  }
  return t;
}

// Runs fn(tile) for every tile on n_threads threads (dynamic: tiles differ a lot in work).
template <typename F>
void for_tiles(int64_t ntiles, int n_threads, F fn) {
  n_threads = (int)std::max<int64_t>(1, std::min<int64_t>(n_threads, ntiles));
  if (n_threads == 1) {
    for (int64_t t = 0; t < ntiles; ++t) fn(t);
    return;
  }
  std::atomic<int64_t> next{0};
  auto work = [&]() {
    for (int64_t t; (t = next.fetch_add(1)) < ntiles;) fn(t);
  };
  std::vector<std::thread> pool;
  for (int i = 1; i < n_threads; ++i) pool.emplace_back(work);
  work();
  for (auto& th : pool) th.join();
}

// One visit of a (Gaussian, pixel) pair that counts, as the tile walk finds it.
template <typename T>
struct Hit {
  int64_t entry;  // index into TileLists::gauss
  int p;          // pixel inside the tile
  T alpha, trans, dx, dy;
};

// Walks one tile front to back. For every pair that counts calls hit(entry, g, p, alpha, T_before,
// dx, dy); trans[p] ends as each pixel's final transmittance. Open pixels are kept as one 16-bit mask
// per tile row, so stopped pixels (and rows with none open) cost nothing, and the walk ends once every
// pixel of the tile has stopped.
template <typename T, typename F>
void walk_tile(const Scene<T>& s, const TileLists& tl, int64_t tile, double* trans, F hit) {
  static_assert(TILE == 16, "one uint32 mask per row holds a 16-pixel tile row");
  const int tx = (int)(tile % tl.tw), ty = (int)(tile / tl.tw);
  const int px0 = tx * TILE, py0 = ty * TILE;
  const int pw = std::min(TILE, s.W - px0), ph = std::min(TILE, s.H - py0);
  uint32_t open[TILE];
  for (int r = 0; r < TILE; ++r) open[r] = r < ph ? (1u << pw) - 1u : 0u;
  for (int p = 0; p < TILE * TILE; ++p) trans[p] = 1.0;
  int n_open = pw * ph;
  const T amax = s.alpha_max;
  for (int64_t k = tl.offsets[tile]; k < tl.offsets[tile + 1] && n_open > 0; ++k) {
    const int64_t g = tl.gauss[k];
    const Extent& e = tl.ext[g];
    const T mx = s.means2d[2 * g], my = s.means2d[2 * g + 1];
    const T a = s.conics[3 * g], b = s.conics[3 * g + 1], c = s.conics[3 * g + 2], o = s.opac[g];
    // the exact x-interval of a row (composite.py's _row_spans): centre xc0 + slope dy, half-width
    // sqrt(k0 - det dy^2) / a; constants per Gaussian, in double, widened by SPAN_EPS
    const double inv_a = 1.0 / (double)a, k0 = 2.0 * (double)a * e.tau, slope = -(double)b * inv_a;
    const double xc0 = (double)mx - 0.5, myd = my;
    const T ha = T(0.5) * a;
    const int ya = std::max(e.y0, py0), yb = std::min(e.y1, py0 + ph - 1);
    const double xlo = std::max(e.x0, px0), xhi = std::min(e.x1, px0 + pw - 1);
    for (int y = ya; y <= yb; ++y) {
      const int r = y - py0;
      if (!open[r]) continue;
      const double dyd = (double)y + 0.5 - myd;
      const double half = std::sqrt(std::max(0.0, k0 - e.det * dyd * dyd)) * inv_a;
      const double xc = xc0 + slope * dyd;
      const int xa = (int)std::max(std::ceil(xc - half - SPAN_EPS), xlo) - px0;
      const int xb = (int)std::min(std::floor(xc + half + SPAN_EPS), xhi) - px0;
      if (xb < xa) continue;
      uint32_t bits = open[r] & (((2u << xb) - 1u) & ~((1u << xa) - 1u));
      if (!bits) continue;
      const T dy = (T)((T)y + T(0.5)) - my;  // in the input precision, as the torch path
      const T bdy = b * dy, cdy = T(0.5) * c * dy * dy;
      for (; bits; bits &= bits - 1u) {
        const int i = __builtin_ctz(bits), p = r * TILE + i;
        const T dx = (T)((T)(px0 + i) + T(0.5)) - mx;
        const T sigma = dx * (ha * dx + bdy) + cdy;
        if (sigma < T(0)) continue;
        const T alpha = std::min(amax, o * std::exp(-sigma));
        if (alpha < (T)ALPHA_MIN) continue;
        const double next = trans[p] * (1.0 - (double)alpha);
        if (next <= T_MIN) {
          open[r] &= ~(1u << i);
          --n_open;
          continue;
        }
        hit(k, g, p, alpha, (T)trans[p], dx, dy);
        trans[p] = next;
      }
    }
  }
}

// DN > 0: the channel count as a compile-time constant (RGB+depth, 19 labels+depth), so the per-pair
// channel loops unroll and vectorise; DN == 0: any count.
template <typename T, int DN>
void forward(const Scene<T>& s, T* image, T* t_final, int n_threads) {
  const TileLists tl = tile_lists(s);
  const int64_t D = DN > 0 ? DN : s.D;
  for_tiles((int64_t)tl.tw * tl.th, n_threads, [&](int64_t tile) {
    double trans[TILE * TILE];
    std::vector<T> acc(TILE * TILE * D, T(0));  // input precision, as the torch path's sparse product
    walk_tile(s, tl, tile, trans, [&](int64_t, int64_t g, int p, T alpha, T tb, T, T) {
      const T w = alpha * tb;
      const T* __restrict__ col = s.colors + g * D;
      T* __restrict__ out = acc.data() + p * D;
#pragma omp simd
      for (int64_t d = 0; d < D; ++d) out[d] += w * col[d];
    });
    const int px0 = (int)(tile % tl.tw) * TILE, py0 = (int)(tile / tl.tw) * TILE;
    const int pw = std::min(TILE, s.W - px0), ph = std::min(TILE, s.H - py0);
    for (int j = 0; j < ph; ++j)
      for (int i = 0; i < pw; ++i) {
        const int p = j * TILE + i;
        const int64_t pix = (int64_t)(py0 + j) * s.W + px0 + i;
        t_final[pix] = (T)trans[p];
        for (int64_t d = 0; d < D; ++d) image[pix * D + d] = acc[p * D + d];
      }
  });
}

template <typename T, int DN>
void backward(const Scene<T>& s, const T* d_image, const T* d_alpha, T* d_means2d, T* d_conics, T* d_opac,
              T* d_colors, int n_threads) {
  const TileLists tl = tile_lists(s);
  const int64_t D = DN > 0 ? DN : s.D, n_entries = (int64_t)tl.gauss.size();
  // per (tile, Gaussian) slot: sums of h, h dx, h dy, h dx^2, h dx dy, h dy^2 (h = -dL/dsigma), colour grads
  std::vector<double> sums(n_entries * 6, 0.0);
  std::vector<T> dcol(n_entries * D, T(0));  // colour grads in the input precision, as the torch path
  for_tiles((int64_t)tl.tw * tl.th, n_threads, [&](int64_t tile) {
    double trans[TILE * TILE];
    thread_local std::vector<Hit<T>> hits;  // reused across tiles and calls
    hits.clear();
    walk_tile(s, tl, tile, trans, [&](int64_t k, int64_t, int p, T alpha, T tb, T dx, T dy) {
      hits.push_back(Hit<T>{k, p, alpha, tb, dx, dy});
    });
    const int px0 = (int)(tile % tl.tw) * TILE, py0 = (int)(tile / tl.tw) * TILE;
    double after[TILE * TILE], dtf[TILE * TILE];
    for (int p = 0; p < TILE * TILE; ++p) {
      const int i = p % TILE, j = p / TILE;
      after[p] = 0.0;
      dtf[p] = 0.0;
      if (px0 + i < s.W && py0 + j < s.H) dtf[p] = -(double)d_alpha[(int64_t)(py0 + j) * s.W + px0 + i] * trans[p];
    }
    for (auto it = hits.rbegin(); it != hits.rend(); ++it) {  // back to front
      const Hit<T>& h = *it;
      const int64_t g = tl.gauss[h.entry];
      const int64_t pix = (int64_t)(py0 + h.p / TILE) * s.W + px0 + h.p % TILE;
      const T* __restrict__ col = s.colors + g * D;
      const T* __restrict__ gi = d_image + pix * D;
      T* __restrict__ dc = dcol.data() + h.entry * D;
      const T wt = h.alpha * h.trans;
      T vt = T(0);
#pragma omp simd reduction(+ : vt)
      for (int64_t d = 0; d < D; ++d) {
        vt += col[d] * gi[d];
        dc[d] += wt * gi[d];
      }
      const double w = wt, v = vt;
      const double d_a = (double)h.trans * v - (after[h.p] + dtf[h.p]) / (1.0 - (double)h.alpha);
      after[h.p] += w * v;
      if (h.alpha < s.alpha_max) {
        const double hh = d_a * (double)h.alpha, dx = h.dx, dy = h.dy;
        double* sm = sums.data() + h.entry * 6;
        sm[0] += hh;
        sm[1] += hh * dx;
        sm[2] += hh * dy;
        sm[3] += hh * dx * dx;
        sm[4] += hh * dx * dy;
        sm[5] += hh * dy * dy;
      }
    }
  });
  // Slots to Gaussians, in a fixed order (tile by tile).
  std::vector<double> gs(s.M * 6, 0.0), gc(s.M * D, 0.0);
  for (int64_t k = 0; k < n_entries; ++k) {
    const int64_t g = tl.gauss[k];
    for (int i = 0; i < 6; ++i) gs[g * 6 + i] += sums[k * 6 + i];
    for (int64_t d = 0; d < D; ++d) gc[g * D + d] += dcol[k * D + d];
  }
  for (int64_t g = 0; g < s.M; ++g) {
    const double a = s.conics[3 * g], b = s.conics[3 * g + 1], c = s.conics[3 * g + 2];
    const double* q = gs.data() + g * 6;  // S0, S1 (dx), D0 (dy), dx^2, dx dy, dy^2
    d_means2d[2 * g] = (T)(a * q[1] + b * q[2]);
    d_means2d[2 * g + 1] = (T)(b * q[1] + c * q[2]);
    d_conics[3 * g] = (T)(-0.5 * q[3]);
    d_conics[3 * g + 1] = (T)(-q[4]);
    d_conics[3 * g + 2] = (T)(-0.5 * q[5]);
    d_opac[g] = (T)(q[0] / (double)s.opac[g]);
    for (int64_t d = 0; d < D; ++d) d_colors[g * D + d] = (T)gc[g * D + d];
  }
}

template <typename T>
Scene<T> scene(const void* means2d, const void* conics, const void* opac, const void* colors, int64_t M, int64_t D,
               int W, int H, double alpha_max) {
  return Scene<T>{(const T*)means2d, (const T*)conics, (const T*)opac, (const T*)colors, M, D, W, H, (T)alpha_max};
}

template <typename T>
void forward_any(const Scene<T>& s, T* image, T* t_final, int n_threads) {
  switch (s.D) {
    case 2: return forward<T, 2>(s, image, t_final, n_threads);
    case 4: return forward<T, 4>(s, image, t_final, n_threads);
    case 20: return forward<T, 20>(s, image, t_final, n_threads);
    default: return forward<T, 0>(s, image, t_final, n_threads);
  }
}

template <typename T>
void backward_any(const Scene<T>& s, const T* d_image, const T* d_alpha, T* d_means2d, T* d_conics, T* d_opac,
                  T* d_colors, int n_threads) {
  switch (s.D) {
    case 2: return backward<T, 2>(s, d_image, d_alpha, d_means2d, d_conics, d_opac, d_colors, n_threads);
    case 4: return backward<T, 4>(s, d_image, d_alpha, d_means2d, d_conics, d_opac, d_colors, n_threads);
    case 20: return backward<T, 20>(s, d_image, d_alpha, d_means2d, d_conics, d_opac, d_colors, n_threads);
    default: return backward<T, 0>(s, d_image, d_alpha, d_means2d, d_conics, d_opac, d_colors, n_threads);
  }
}

}  // namespace

extern "C" {

// ABI version: the Python loader refuses a library whose version differs.
int fb_composite_version() { return 1; }

// double_precision: 0 = float32 buffers, 1 = float64. Outputs: image [H*W, D], t_final [H*W].
void fb_composite_forward(int double_precision, const void* means2d, const void* conics, const void* opac,
                          const void* colors, int64_t M, int64_t D, int W, int H, double alpha_max, void* image,
                          void* t_final, int n_threads) {
  if (double_precision) {
    forward_any(scene<double>(means2d, conics, opac, colors, M, D, W, H, alpha_max), (double*)image, (double*)t_final,
            n_threads);
  } else {
    forward_any(scene<float>(means2d, conics, opac, colors, M, D, W, H, alpha_max), (float*)image, (float*)t_final,
            n_threads);
  }
}

// Gradients of every input from d_image [H*W, D] and d_alpha [H*W] (alpha = 1 - t_final).
void fb_composite_backward(int double_precision, const void* means2d, const void* conics, const void* opac,
                           const void* colors, int64_t M, int64_t D, int W, int H, double alpha_max,
                           const void* d_image, const void* d_alpha, void* d_means2d, void* d_conics, void* d_opac,
                           void* d_colors, int n_threads) {
  if (double_precision) {
    backward_any(scene<double>(means2d, conics, opac, colors, M, D, W, H, alpha_max), (const double*)d_image,
             (const double*)d_alpha, (double*)d_means2d, (double*)d_conics, (double*)d_opac, (double*)d_colors,
             n_threads);
  } else {
    backward_any(scene<float>(means2d, conics, opac, colors, M, D, W, H, alpha_max), (const float*)d_image,
             (const float*)d_alpha, (float*)d_means2d, (float*)d_conics, (float*)d_opac, (float*)d_colors,
             n_threads);
  }
}
}
