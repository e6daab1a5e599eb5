// The CPU rasterizer's C++ kernels: front-to-back compositing of depth-sorted screen-space Gaussians,
// and (further down) the EWA projection, each forward and backward.
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
// Plain C ABI (called through ctypes): no Python or torch headers, so it compiles in a few seconds.

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

// ---------------------------------------------------------------------------------------------------
// EWA projection (project.py's rules) with its hand-written backward. O(N), one Gaussian at a time.

struct Camera {
  double R[3][3], t[3], K[2][3];  // world-to-camera rotation and translation; first two rows of K
  double xlo, xhi, ylo, yhi;      // clamp of x/z and y/z for the Jacobian (1.3x the field of view)
  int W, H;
  double eps2d, near_plane, far_plane;
};

Camera camera(const double* viewmat, const double* K, int W, int H, double eps2d, double near_plane,
              double far_plane) {
  Camera c;
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) c.R[i][j] = viewmat[4 * i + j];
    c.t[i] = viewmat[4 * i + 3];
  }
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j) c.K[i][j] = K[3 * i + j];
  const double fx = K[0], fy = K[4], cx = K[2], cy = K[5];
  const double tan_x = 0.5 * W / fx, tan_y = 0.5 * H / fy;
  c.xlo = -(cx / fx + 0.3 * tan_x);
  c.xhi = (W - cx) / fx + 0.3 * tan_x;
  c.ylo = -(cy / fy + 0.3 * tan_y);
  c.yhi = (H - cy) / fy + 0.3 * tan_y;
  c.W = W;
  c.H = H;
  c.eps2d = eps2d;
  c.near_plane = near_plane;
  c.far_plane = far_plane;
  return c;
}

// Everything the backward needs of one Gaussian, recomputed from the inputs (cheap, O(1)).
template <typename T>
struct ProjState {
  T qn[4], qnorm, Rq[3][3], m[3][3], mc[3], u, v, tmat[2][3], tm[2][3], sxx, syy, sxy, det;
  bool u_in, v_in, det_in;
};

template <typename T>
ProjState<T> proj_state(const Camera& c, const T* mean, const T* quat, const T* scale) {
  ProjState<T> st;
  T n2 = 0;
  for (int i = 0; i < 4; ++i) n2 += quat[i] * quat[i];
  st.qnorm = std::max(std::sqrt(n2), T(1e-12));
  for (int i = 0; i < 4; ++i) st.qn[i] = quat[i] / st.qnorm;
  const T w = st.qn[0], x = st.qn[1], y = st.qn[2], z = st.qn[3];
  const T R[3][3] = {{1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)},
                     {2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)},
                     {2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)}};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) {
      st.Rq[i][j] = R[i][j];
      st.m[i][j] = R[i][j] * scale[j];
    }
  for (int i = 0; i < 3; ++i)
    st.mc[i] = (T)c.R[i][0] * mean[0] + (T)c.R[i][1] * mean[1] + (T)c.R[i][2] * mean[2] + (T)c.t[i];
  const T tz = st.mc[2];
  const T ux = st.mc[0] / tz, vy = st.mc[1] / tz;
  st.u_in = ux >= (T)c.xlo && ux <= (T)c.xhi;
  st.v_in = vy >= (T)c.ylo && vy <= (T)c.yhi;
  st.u = std::min(std::max(ux, (T)c.xlo), (T)c.xhi);
  st.v = std::min(std::max(vy, (T)c.ylo), (T)c.yhi);
  const T a0 = (T)c.K[0][0] / tz, a1 = (T)c.K[1][1] / tz;
  for (int j = 0; j < 3; ++j) {
    st.tmat[0][j] = a0 * ((T)c.R[0][j] - st.u * (T)c.R[2][j]);
    st.tmat[1][j] = a1 * ((T)c.R[1][j] - st.v * (T)c.R[2][j]);
  }
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      st.tm[i][j] = st.tmat[i][0] * st.m[0][j] + st.tmat[i][1] * st.m[1][j] + st.tmat[i][2] * st.m[2][j];
  st.sxx = st.tm[0][0] * st.tm[0][0] + st.tm[0][1] * st.tm[0][1] + st.tm[0][2] * st.tm[0][2] + (T)c.eps2d;
  st.syy = st.tm[1][0] * st.tm[1][0] + st.tm[1][1] * st.tm[1][1] + st.tm[1][2] * st.tm[1][2] + (T)c.eps2d;
  st.sxy = st.tm[0][0] * st.tm[1][0] + st.tm[0][1] * st.tm[1][1] + st.tm[0][2] * st.tm[1][2];
  const T det = st.sxx * st.syy - st.sxy * st.sxy;
  st.det_in = det >= T(1e-10);
  st.det = std::max(det, T(1e-10));
  return st;
}

template <typename T>
void project_forward(const Camera& c, const T* means, const T* quats, const T* scales, int64_t N, T* means2d,
                     T* conics, T* depths, int32_t* radii, T* means_cam) {
  for (int64_t g = 0; g < N; ++g) {
    const ProjState<T> st = proj_state(c, means + 3 * g, quats + 4 * g, scales + 3 * g);
    const T tz = st.mc[2];
    conics[3 * g] = st.syy / st.det;
    conics[3 * g + 1] = -st.sxy / st.det;
    conics[3 * g + 2] = st.sxx / st.det;
    for (int i = 0; i < 2; ++i)
      means2d[2 * g + i] = ((T)c.K[i][0] * st.mc[0] + (T)c.K[i][1] * st.mc[1] + (T)c.K[i][2] * tz) / tz;
    depths[g] = tz;
    for (int i = 0; i < 3; ++i) means_cam[3 * g + i] = st.mc[i];
    // culling and radii (3.33 sigma), as project.py
    const T rx = std::ceil((T)3.33 * std::sqrt(st.sxx)), ry = std::ceil((T)3.33 * std::sqrt(st.syy));
    const T mx = means2d[2 * g], my = means2d[2 * g + 1];
    const bool ok = (st.sxx * st.syy - st.sxy * st.sxy > 0) && tz > (T)c.near_plane && tz < (T)c.far_plane &&
                    mx + rx > 0 && mx - rx < (T)c.W && my + ry > 0 && my - ry < (T)c.H;
    radii[2 * g] = ok ? (int32_t)std::min(rx, T(1e9)) : 0;
    radii[2 * g + 1] = ok ? (int32_t)std::min(ry, T(1e9)) : 0;
  }
}

template <typename T>
void project_backward(const Camera& c, const T* means, const T* quats, const T* scales, int64_t N,
                      const T* d_means2d, const T* d_conics, const T* d_depths, T* d_means, T* d_quats,
                      T* d_scales) {
  for (int64_t g = 0; g < N; ++g) {
    bool any = d_depths[g] != 0 || d_means2d[2 * g] != 0 || d_means2d[2 * g + 1] != 0;
    for (int i = 0; i < 3; ++i) any = any || d_conics[3 * g + i] != 0;
    if (!any) {  // culled or unseen: zero, without evaluating a projection that may divide by z = 0
      for (int i = 0; i < 3; ++i) d_means[3 * g + i] = d_scales[3 * g + i] = 0;
      for (int i = 0; i < 4; ++i) d_quats[4 * g + i] = 0;
      continue;
    }
    const ProjState<T> st = proj_state(c, means + 3 * g, quats + 4 * g, scales + 3 * g);
    const T tz = st.mc[2], det = st.det;
    const T gA = d_conics[3 * g], gB = d_conics[3 * g + 1], gC = d_conics[3 * g + 2];
    // conic = (syy, -sxy, sxx) / det
    T dsxx = gC / det, dsyy = gA / det, dsxy = -gB / det;
    if (st.det_in) {
      const T ddet = -(gA * st.syy - gB * st.sxy + gC * st.sxx) / (det * det);
      dsxx += ddet * st.syy;
      dsyy += ddet * st.sxx;
      dsxy += ddet * (-2 * st.sxy);
    }
    T dtm[2][3];
    for (int j = 0; j < 3; ++j) {
      dtm[0][j] = 2 * dsxx * st.tm[0][j] + dsxy * st.tm[1][j];
      dtm[1][j] = 2 * dsyy * st.tm[1][j] + dsxy * st.tm[0][j];
    }
    // tm = tmat m
    T dtmat[2][3], dm[3][3];
    for (int i = 0; i < 2; ++i)
      for (int k = 0; k < 3; ++k) dtmat[i][k] = dtm[i][0] * st.m[k][0] + dtm[i][1] * st.m[k][1] + dtm[i][2] * st.m[k][2];
    for (int k = 0; k < 3; ++k)
      for (int j = 0; j < 3; ++j) dm[k][j] = st.tmat[0][k] * dtm[0][j] + st.tmat[1][k] * dtm[1][j];
    // m = Rq diag(scale)
    T G[3][3];
    for (int j = 0; j < 3; ++j) {
      T ds = 0;
      for (int i = 0; i < 3; ++i) {
        G[i][j] = dm[i][j] * scales[3 * g + j];
        ds += dm[i][j] * st.Rq[i][j];
      }
      d_scales[3 * g + j] = ds;
    }
    // rotation matrix of the normalised quaternion, then the normalisation
    const T w = st.qn[0], x = st.qn[1], y = st.qn[2], z = st.qn[3];
    T dq[4];
    dq[0] = 2 * (-z * G[0][1] + y * G[0][2] + z * G[1][0] - x * G[1][2] - y * G[2][0] + x * G[2][1]);
    dq[1] = 2 * (y * G[0][1] + z * G[0][2] + y * G[1][0] - 2 * x * G[1][1] - w * G[1][2] + z * G[2][0] +
                 w * G[2][1] - 2 * x * G[2][2]);
    dq[2] = 2 * (-2 * y * G[0][0] + x * G[0][1] + w * G[0][2] + x * G[1][0] + z * G[1][2] - w * G[2][0] +
                 z * G[2][1] - 2 * y * G[2][2]);
    dq[3] = 2 * (-2 * z * G[0][0] - w * G[0][1] + x * G[0][2] + w * G[1][0] - 2 * z * G[1][1] + y * G[1][2] +
                 x * G[2][0] + y * G[2][1]);
    const T qd = dq[0] * w + dq[1] * x + dq[2] * y + dq[3] * z;
    for (int i = 0; i < 4; ++i) d_quats[4 * g + i] = (dq[i] - st.qn[i] * qd) / st.qnorm;
    // tmat rows: a0 (R0 - u R2), a1 (R1 - v R2), a0 = fx / tz, a1 = fy / tz
    const T a0 = (T)c.K[0][0] / tz, a1 = (T)c.K[1][1] / tz;
    T da0 = 0, da1 = 0, du = 0, dv = 0;
    for (int j = 0; j < 3; ++j) {
      da0 += dtmat[0][j] * ((T)c.R[0][j] - st.u * (T)c.R[2][j]);
      da1 += dtmat[1][j] * ((T)c.R[1][j] - st.v * (T)c.R[2][j]);
      du -= a0 * dtmat[0][j] * (T)c.R[2][j];
      dv -= a1 * dtmat[1][j] * (T)c.R[2][j];
    }
    T dmc[3] = {0, 0, d_depths[g]};
    dmc[2] -= (da0 * (T)c.K[0][0] + da1 * (T)c.K[1][1]) / (tz * tz);
    if (st.u_in) {
      dmc[0] += du / tz;
      dmc[2] -= du * st.mc[0] / (tz * tz);
    }
    if (st.v_in) {
      dmc[1] += dv / tz;
      dmc[2] -= dv * st.mc[1] / (tz * tz);
    }
    // means2d = K[:2] mc / tz
    for (int i = 0; i < 2; ++i) {
      const T gi = d_means2d[2 * g + i];
      const T num = (T)c.K[i][0] * st.mc[0] + (T)c.K[i][1] * st.mc[1] + (T)c.K[i][2] * tz;
      dmc[0] += gi * (T)c.K[i][0] / tz;
      dmc[1] += gi * (T)c.K[i][1] / tz;
      dmc[2] += gi * ((T)c.K[i][2] / tz - num / (tz * tz));
    }
    // mc = R mean + t
    for (int j = 0; j < 3; ++j)
      d_means[3 * g + j] = (T)c.R[0][j] * dmc[0] + (T)c.R[1][j] * dmc[1] + (T)c.R[2][j] * dmc[2];
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
int fb_composite_version() { return 2; }

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

// Projection: viewmat [4,4] and K [3,3] are float64 here; the per-Gaussian buffers follow double_precision.
void fb_project_forward(int double_precision, const void* means, const void* quats, const void* scales, int64_t N,
                        const double* viewmat, const double* K, int W, int H, double eps2d, double near_plane,
                        double far_plane, void* means2d, void* conics, void* depths, int32_t* radii,
                        void* means_cam) {
  const Camera c = camera(viewmat, K, W, H, eps2d, near_plane, far_plane);
  if (double_precision) {
    project_forward(c, (const double*)means, (const double*)quats, (const double*)scales, N, (double*)means2d,
                    (double*)conics, (double*)depths, radii, (double*)means_cam);
  } else {
    project_forward(c, (const float*)means, (const float*)quats, (const float*)scales, N, (float*)means2d,
                    (float*)conics, (float*)depths, radii, (float*)means_cam);
  }
}

void fb_project_backward(int double_precision, const void* means, const void* quats, const void* scales, int64_t N,
                         const double* viewmat, const double* K, int W, int H, double eps2d, double near_plane,
                         double far_plane, const void* d_means2d, const void* d_conics, const void* d_depths,
                         void* d_means, void* d_quats, void* d_scales) {
  const Camera c = camera(viewmat, K, W, H, eps2d, near_plane, far_plane);
  if (double_precision) {
    project_backward(c, (const double*)means, (const double*)quats, (const double*)scales, N,
                     (const double*)d_means2d, (const double*)d_conics, (const double*)d_depths, (double*)d_means,
                     (double*)d_quats, (double*)d_scales);
  } else {
    project_backward(c, (const float*)means, (const float*)quats, (const float*)scales, N, (const float*)d_means2d,
                     (const float*)d_conics, (const float*)d_depths, (float*)d_means, (float*)d_quats,
                     (float*)d_scales);
  }
}
}
