"""Face decoder sampling benchmark: quality vs steps for ancestral DDPM, DDIM and DPM-Solver++, and s per image.

    python benchmarks/face_sampling.py [--samples 2000] [--steps 10,25,50,100,250,500,1000,2000]
                                       [--speed-configs tiny,paper] [--skip-quality] [--device cpu|cuda]

Quality without trained weights: the data are a Gaussian mixture fitted to face pictures
(scikit-image's LFW subset, the 100 faces, 8x8 grey, [-1, 1]), whose noisy marginals and
therefore exact eps are closed form, so every sampler runs on the ideal eps-network and the
only error left is the sampler's (discretisation) error. Distances between the samples and the
true mixture: Fréchet distance of the first two moments (``a2v.metrics.frechet_distance``, the
FID formula on pixels), total variation between sampled and true component weights, and the
same numbers for exact mixture samples (the finite-sample floor). Schedule: the face decoder's
(cosine, 2000 training steps). Samples are not clipped (the mixture has tails past [-1, 1]).

Speed: the face decoder U-Net (``FaceDecoder``, paper Table 1 or tiny config) at batch 1 with
guidance (w = 4: one doubled-batch call per step); one timed network call per step + the
scheduler's own update time, times the number of steps (a 2000-step chain is not run on CPU).

Writes benchmarks/results/face_sampling.{json,png}; runs on CUDA when present, else CPU.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
from torch import Tensor

from a2v.diffusion.ddpm import ddpm_sample, make_scheduler
from a2v.io import atomic_path, write_json_atomic
from a2v.metrics import frechet_distance

SAMPLERS = ("ancestral", "ddim", "dpmsolver++")
COLORS = {"ancestral": "tab:blue", "ddim": "tab:orange", "dpmsolver++": "tab:green"}
RESULTS = Path(__file__).parent / "results"


class FaceGMM:
    """Gaussian mixture over flattened grey face pictures (D = size_px^2) with closed-form eps.

    weights (K,), means (K,D), evecs (K,D,D), evals (K,D) of each component's covariance, float64.
    """

    def __init__(self, weights: Tensor, means: Tensor, evecs: Tensor, evals: Tensor) -> None:
        self.weights, self.means, self.evecs, self.evals = weights, means, evecs, evals

    @classmethod
    def fit_lfw(cls, size_px: int = 8, k: int = 4, eig_floor: float = 1e-3, seed: int = 0) -> FaceGMM:
        """k-means (scipy) on the LFW-subset faces, then each cluster's covariance, eigenvalues >= eig_floor."""
        import numpy as np
        import skimage.data
        from scipy.cluster.vq import kmeans2
        from skimage.transform import resize

        faces = skimage.data.lfw_subset()[:100]  # (100,25,25) float in [0,1]; images 100-199 are not faces
        small = np.stack([resize(f, (size_px, size_px), anti_aliasing=True) for f in faces])  # (N,H,W)
        x = small.reshape(len(small), -1) * 2 - 1  # (N,H,W)->(N,D) in [-1,1]
        _, labels = kmeans2(x, k, seed=seed, minit="++")
        xt = torch.from_numpy(x)  # (N,D) float64
        lab = torch.from_numpy(labels)  # (N,)
        weights, means, evecs, evals = [], [], [], []
        for j in range(k):
            xj = xt[lab == j]  # (Nj,D)
            cov = torch.cov(xj.T) if len(xj) > 1 else torch.zeros(xt.shape[1], xt.shape[1], dtype=torch.float64)
            lam, u = torch.linalg.eigh(cov)  # (D,), (D,D)
            weights.append(len(xj) / len(xt))
            means.append(xj.mean(0))
            evecs.append(u)
            evals.append(lam.clamp_min(eig_floor))
        return cls(torch.tensor(weights, dtype=torch.float64), torch.stack(means), torch.stack(evecs),
                   torch.stack(evals))

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def moments(self) -> tuple[Tensor, Tensor]:
        """Mean (D,) and covariance (D,D) of the mixture (law of total covariance)."""
        mean = self.weights @ self.means  # (D,)
        covs = self.evecs @ torch.diag_embed(self.evals) @ self.evecs.transpose(1, 2)  # (K,D,D)
        dev = self.means - mean  # (K,D)
        cov = torch.einsum("k,kij->ij", self.weights, covs + dev[:, :, None] * dev[:, None, :])  # (D,D)
        return mean, cov

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """Exact samples float64 (n,D)."""
        comp = torch.multinomial(self.weights, n, replacement=True, generator=generator)  # (n,)
        z = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)  # (n,D)
        return self.means[comp] + torch.einsum("nij,nj->ni", self.evecs[comp], self.evals[comp].sqrt() * z)

    def log_density_terms(self, x: Tensor, ab: float) -> tuple[Tensor, Tensor]:
        """For x_t ~ q(x_t | abar = ab), x (B,D): component log-densities (B,K) and the whitened residuals
        z_k = Lambda_k(ab)^-1 U_k^T (x - sqrt(ab) mu_k) as (B,K,D), in x's dtype.

        q(x_t) = sum_k pi_k N(sqrt(ab) mu_k, ab Sigma_k + (1 - ab) I) (Ho et al. 2020, eq. 4), and
        ab Sigma_k + (1 - ab) I = U_k Lambda_k U_k^T with Lambda_k = ab lambda_k + (1 - ab).
        """
        k, d = self.means.shape
        u = self.evecs.permute(1, 0, 2).reshape(d, k * d).to(x.dtype)  # (K,D,D)->(D,K*D) all U_k side by side
        mu_u = torch.einsum("kd,kde->ke", self.means, self.evecs).reshape(-1)  # (K,D)->(K*D,)
        lam = (ab * self.evals + (1 - ab)).reshape(-1)  # (K,D)->(K*D,)
        y = x @ u - (math.sqrt(ab) * mu_u).to(x.dtype)  # (B,D)->(B,K*D)
        z = y * (1 / lam).to(x.dtype)  # (B,K*D)
        maha = (z * y).reshape(-1, k, d).sum(-1)  # (B,K*D)->(B,K)
        const = self.weights.log() - 0.5 * (lam.reshape(k, d).log().sum(-1) + d * math.log(2 * math.pi))  # (K,)
        return const.to(x.dtype) - 0.5 * maha, z.reshape(-1, k, d)  # (B,K), (B,K,D)

    def eps_fn(self, alphas_cumprod: Tensor, shape: tuple[int, ...]):
        """Ideal eps-network ``(x_t (B,*shape), t (B,), cond) -> eps`` = -sqrt(1 - abar_t) grad log q_t(x_t).

        grad log q_t(x) = -sum_k r_k(x) U_k z_k(x), r = posterior over components. All of the batch
        shares one t (as in ``ddpm_sample``); float32 inside (the error is far below the samplers').
        """
        k, d = self.means.shape
        ut = self.evecs.permute(0, 2, 1).reshape(k * d, d).float()  # (K,D,D)->(K*D,D): rows of all U_k^T
        abar = alphas_cumprod.to(torch.float64).cpu()

        def eps(x: Tensor, t: Tensor, cond: object = None) -> Tensor:
            if bool((t != t[0]).any()):
                raise ValueError("the closed-form eps expects one timestep per batch")
            ab = float(abar[int(t[0])])
            logp, z = self.log_density_terms(x.reshape(len(x), -1).float().cpu(), ab)  # (B,K), (B,K,D)
            rz = (logp.softmax(-1)[:, :, None] * z).reshape(len(x), k * d)  # (B,K,D)->(B,K*D)
            out = math.sqrt(1 - ab) * (rz @ ut)  # (B,K*D)->(B,D)
            return out.reshape(len(x), *shape).to(device=x.device, dtype=x.dtype)  # (B,D)->(B,*shape)

        return eps

    def component_weights(self, x: Tensor) -> Tensor:
        """Fraction (K,) of samples x (N,D) whose most likely component (under the data density) is each k."""
        logp, _ = self.log_density_terms(x.double(), 1.0)  # (N,K)
        return torch.bincount(logp.argmax(-1), minlength=len(self.weights)).double() / len(x)  # (K,)


def distances(gmm: FaceGMM, x: Tensor) -> dict[str, float]:
    """Fréchet distance (sample moments vs the mixture's), mean / covariance errors, component-weight TV."""
    x = x.double()  # (N,D)
    mean, cov = gmm.moments()
    m, c = x.mean(0), torch.cov(x.T)  # (D,), (D,D)
    return {
        "frechet": frechet_distance(m, c, mean, cov),
        "mean_l2": float((m - mean).norm()),
        "cov_rel_fro": float((c - cov).norm() / cov.norm()),
        "weights_tv": float(0.5 * (gmm.component_weights(x) - gmm.weights).abs().sum()),
    }


def quality_vs_steps(gmm: FaceGMM, n: int, steps: dict[str, list[int]], size_px: int, seed: int,
                     n_ref: int = 250, ref_steps: int = 1000) -> dict:
    """Every sampler at its step counts from one shared x_T, the exact-sample floor (3 draws), and for the
    deterministic samplers the RMS error of the first ``n_ref`` samples vs the ODE solution from the same
    x_T (DPM-Solver++ at ``ref_steps``), which isolates the discretisation error from sampling noise."""
    shape = (1, size_px, size_px)
    x_T = torch.randn((n, *shape), generator=torch.Generator().manual_seed(seed))  # (N,1,H,W)
    ref_sched = make_scheduler("dpmsolver++", num_train_timesteps=2000)
    ref = ddpm_sample(gmm.eps_fn(ref_sched.alphas_cumprod, shape), (n_ref, *shape), ref_sched,
                      num_inference_steps=ref_steps, x_T=x_T[:n_ref], clip_range=None, progress=False)
    rows = []
    for kind, counts in steps.items():
        sched = make_scheduler(kind, num_train_timesteps=2000)
        eps = gmm.eps_fn(sched.alphas_cumprod, shape)
        for s in counts:
            g = torch.Generator().manual_seed(seed + 100)  # ancestral noise
            t0 = time.perf_counter()
            x = ddpm_sample(eps, (n, *shape), sched, num_inference_steps=s, generator=g, x_T=x_T,
                            clip_range=None, progress=False)  # (N,1,H,W)
            sec = time.perf_counter() - t0
            ode = None if kind == "ancestral" else float((x[:n_ref] - ref).square().mean().sqrt())
            row = {"sampler": kind, "steps": s, "nfe": s, **distances(gmm, x.reshape(n, -1)),
                   "ode_rmse": ode, "wall_s": round(sec, 2)}
            rows.append(row)
            print(f"{kind:12s} {s:5d} steps  FD {row['frechet']:.4f}  weights TV {row['weights_tv']:.3f}"
                  f"  ODE RMSE {'-' if ode is None else f'{ode:.2e}'}  {sec:.1f} s")
    floor = [distances(gmm, gmm.sample(n, torch.Generator().manual_seed(seed + 1 + i))) for i in range(3)]
    stats = {k: {"mean": sum(f[k] for f in floor) / len(floor), "min": min(f[k] for f in floor),
                 "max": max(f[k] for f in floor)} for k in floor[0]}
    print(f"exact samples (floor)  FD {stats['frechet']['mean']:.4f} [{stats['frechet']['min']:.4f},"
          f" {stats['frechet']['max']:.4f}]  weights TV {stats['weights_tv']['mean']:.3f}")
    return {"rows": rows, "exact_sample_floor": stats, "ode_reference": {"sampler": "dpmsolver++",
            "steps": ref_steps, "samples": n_ref}}


def speed(config: str, device: str, steps: dict[str, list[int]], w: float = 4.0,
          measure_budget_s: float = 30.0) -> list[dict]:
    """Seconds per 64 px (paper) or 16 px (tiny) image with guidance w, batch 1.

    ``s_per_image`` = steps x (fastest of the timed guided network calls + the scheduler's update time),
    ``s_per_image_median`` the same with the median call;
    where that estimate is under ``measure_budget_s`` the whole ``ddpm_sample`` call is also timed
    (``s_per_image_measured``), otherwise it is None (e.g. the paper decoder's 2000 steps on CPU).
    """
    from a2v.config import load_config
    from a2v.recipes.face.config import FaceConfig
    from a2v.recipes.face.decoder import FaceDecoder

    cfg = load_config(FaceConfig, Path(__file__).parents[1] / f"configs/face/{config}.yaml", [])
    dc = cfg.decoder
    t0 = time.perf_counter()
    net = FaceDecoder(dc, cfg.embedding.dim).to(device).eval()
    build_s = time.perf_counter() - t0
    params = sum(p.numel() for p in net.parameters())
    x = torch.randn(2, 3, dc.image_size_px, dc.image_size_px, device=device)  # (2B,3,H,W): cond + uncond
    emb = torch.randn(2, cfg.embedding.dim, device=device)  # (2B,D)
    t = torch.full((2,), dc.num_train_timesteps // 2, device=device)  # (2B,)
    calls = 1 if config == "paper" and device == "cpu" else 10

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    with torch.no_grad():
        net(x, t, emb)  # warm-up
        sync()
        times = []
        for _ in range(calls):
            t0 = time.perf_counter()
            net(x, t, emb)
            sync()
            times.append(time.perf_counter() - t0)
        net_s = min(times)  # fastest call: the least disturbed by other load on a shared CPU
        net_med = sorted(times)[len(times) // 2]
    rows = []
    for kind, counts in steps.items():
        sched = make_scheduler(kind, num_train_timesteps=dc.num_train_timesteps)
        probe = 50
        sched.set_timesteps(probe, device=device)
        xs, e = x[:1].clone(), torch.randn_like(x[:1])  # (1,3,H,W)
        kw = {"generator": torch.Generator(device=device).manual_seed(0)} if kind == "ancestral" else {}
        sync()
        t0 = time.perf_counter()
        for tt in sched.timesteps:
            xs = sched.step(e, tt, xs, **kw).prev_sample  # (1,3,H,W)
        sync()
        sched_s = (time.perf_counter() - t0) / probe
        for n in counts:
            n = min(n, dc.num_train_timesteps)
            measured = None
            if n * (net_s + sched_s) <= measure_budget_s:
                sync()
                t0 = time.perf_counter()
                ddpm_sample(net, tuple(x[:1].shape), sched, cond=emb[:1], num_inference_steps=n, w=w,
                            generator=torch.Generator(device=device).manual_seed(0), device=device,
                            progress=False)
                sync()
                measured = round(time.perf_counter() - t0, 3)
            rows.append({"config": config, "device": device, "size_px": dc.image_size_px, "params_M": round(params / 1e6, 1),
                         "guidance_w": w, "batch": 1, "sampler": kind, "steps": n,
                         "net_s_per_step": round(net_s, 4),
                         "net_s_per_step_median": round(net_med, 4), "sched_s_per_step": round(sched_s, 6),
                         "s_per_image": round(n * (net_s + sched_s), 3),
                         "s_per_image_median": round(n * (net_med + sched_s), 3), "timed_net_calls": calls,
                         "s_per_image_measured": measured, "build_s": round(build_s, 1)})
    print(f"{config} decoder ({params / 1e6:.1f} M params, {dc.image_size_px} px) on {device}: "
          f"{net_s:.3f} s per guided step")
    return rows


def plot(q: dict, path: Path) -> None:
    """Three panels vs steps (log-log): Fréchet distance, component-weight TV, ODE RMSE; one line per sampler."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (("frechet", "Fréchet distance to the true mixture"), ("weights_tv", "component-weight TV"),
              ("ode_rmse", "RMSE vs the exact ODE solution"))
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
    for kind in SAMPLERS:
        r = [row for row in q["rows"] if row["sampler"] == kind]
        for a, (key, _) in zip(ax, panels, strict=True):
            pts = [(row["steps"], row[key]) for row in r if row[key] is not None]
            if pts:
                a.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=COLORS[kind], label=kind)
    for a, (key, title) in zip(ax, panels, strict=True):
        if key in q["exact_sample_floor"]:
            f = q["exact_sample_floor"][key]
            a.axhline(f["mean"], color="k", ls="--", lw=1, label="exact samples (mean of 3)")
            a.axhspan(f["min"], f["max"], color="k", alpha=0.08)
        a.set(xscale="log", yscale="log", xlabel="sampling steps (= network calls)", title=title)
        a.grid(True, which="both", alpha=0.3)
    ax[0].legend()
    fig.suptitle("Face DDPM samplers with the exact eps of a face mixture (LFW 8x8 grey, cosine schedule, T = 2000)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)


def _merge_speed(path: Path, new: list[dict]) -> list[dict]:
    """Speed rows of an earlier run on other (config, device) pairs are kept, so CPU and CUDA rows coexist."""
    import json

    if not path.exists():
        return new
    done = {(r["config"], r["device"]) for r in new}
    old = json.loads(path.read_text()).get("speed", [])
    return [r for r in old if (r["config"], r["device"]) not in done] + new


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--steps", default="10,25,50,100,250", help="step counts for every sampler")
    ap.add_argument("--ancestral-extra", default="500,2000", help="further step counts for ancestral only")
    ap.add_argument("--size-px", type=int, default=8)
    ap.add_argument("--components", type=int, default=4)
    ap.add_argument("--speed-configs", default=None,
                    help="face configs to time (comma list, '' = none); default tiny on CPU, tiny,paper on CUDA")
    ap.add_argument("--skip-quality", action="store_true", help="only time the decoder (keeps earlier quality rows)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.speed_configs is None:
        a.speed_configs = "tiny,paper" if a.device.startswith("cuda") else "tiny"
    common = [int(s) for s in a.steps.split(",") if s]
    steps = {k: common for k in SAMPLERS}
    steps["ancestral"] = sorted(set(common) | {int(s) for s in a.ancestral_extra.split(",") if s})
    out_json = RESULTS / "face_sampling.json"
    t0 = time.perf_counter()
    if a.skip_quality:
        import json

        out = json.loads(out_json.read_text())
    else:
        gmm = FaceGMM.fit_lfw(a.size_px, a.components, seed=a.seed)
        out = {
            "setup": {"data": "Gaussian mixture fitted to skimage lfw_subset faces 0-99 (k-means, eigenvalue floor 1e-3)",
                      "size_px": a.size_px, "dim": gmm.dim, "components": a.components,
                      "component_weights": gmm.weights.tolist(), "samples_per_run": a.samples,
                      "schedule": "cosine (squaredcos_cap_v2), 2000 training steps, eps prediction",
                      "eps": "closed form (ideal network)", "clip": "none", "seed": a.seed, "quality_device": "cpu",
                      "timestep_spacing": {"ancestral": "leading", "ddim": "trailing", "dpmsolver++": "trailing"},
                      "cpu_threads": torch.get_num_threads()},
            "quality_vs_steps": quality_vs_steps(gmm, a.samples, steps, a.size_px, a.seed),
        }
        out["quality_wall_s"] = round(time.perf_counter() - t0, 1)
    speed_steps = {"ancestral": [2000], "ddim": [25, 50], "dpmsolver++": [25, 50]}
    sp = [row for c in a.speed_configs.split(",") if c for row in speed(c, a.device, speed_steps)]
    out["speed"] = _merge_speed(out_json, sp)
    write_json_atomic(out_json, out)
    plot(out["quality_vs_steps"], RESULTS / "face_sampling.png")
    print(f"wrote {out_json} in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
