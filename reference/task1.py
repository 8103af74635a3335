r"""Task 1, "Diving into Attention": reference answers as data, and numbers that check them.

The written answers are what a TA compares a submission with (Markdown with LaTeX, as the students
write them). ``key_points`` are what earns the points; ``common_mistakes`` are errors seen in real
submissions (the seed notebook has several: the cross product for 1.2.2 / 1.3.1, stacking the basis
as rows for 1.2.1, a wrong power of ten in 1.4.3).

The demonstrations only need numpy, so that this module imports in milliseconds and the tests that
use it need no store. Notation: $n$ keys, dimension $d$, query $q$, weights
$a_i = \exp(q^Tk_i)/\sum_j \exp(q^Tk_j)$, output $o = \sum_i a_i v_i$.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Answer:
    """One written question of Task 1 and its reference answer."""

    id: str  # "1.1.2": subtask 1.1, question 2
    subtask: str  # "1.1"
    question: str
    answer: str  # Markdown with LaTeX
    key_points: tuple[str, ...]
    common_mistakes: tuple[str, ...] = ()


SUBTASK_TITLES = {
    "1.1": "Copying",
    "1.2": "Averaging",
    "1.3": "Drawbacks of Single-head Attention",
    "1.4": "Model Size",
}
SUBTASK_POINTS = {"1.1": 3, "1.2": 4, "1.3": 4, "1.4": 1}

ANSWERS: tuple[Answer, ...] = (
    Answer(
        id="1.1.1",
        subtask="1.1",
        question="Explain why $a$ can be interpreted as a categorical distribution.",
        answer=r"""$a$ is the softmax of the scores $q^Tk_1,\dots,q^Tk_n$. Every weight is positive,
$a_i = \frac{\exp(q^Tk_i)}{\sum_j \exp(q^Tk_j)} > 0$, because the exponential is positive, and the
weights sum to one, $\sum_i a_i = \frac{\sum_i \exp(q^Tk_i)}{\sum_j \exp(q^Tk_j)} = 1$. A vector of
$n$ non-negative numbers that sums to one is a probability mass function over the $n$ positions:
$a_i$ is the probability that the query "picks" key/value $i$. (So $a \in \mathbb{R}^n$, one weight
per key, not $\mathbb{R}^d$.) The output $o = \sum_i a_i v_i = \mathbb{E}_{i\sim a}[v_i]$ is the
expected value vector under this distribution.""",
        key_points=(
            "a is the softmax of the scores q^T k_i",
            "every a_i >= 0 (in fact > 0) because exp is positive",
            "the a_i sum to 1 (normalisation by the denominator)",
            "hence a distribution over the n keys/positions (o is an expectation of v under it)",
        ),
        common_mistakes=(
            "only saying 'it is a probability distribution' without showing non-negativity and sum to 1",
            "a distribution over the d dimensions instead of over the n keys",
        ),
    ),
    Answer(
        id="1.1.2",
        subtask="1.1",
        question=(
            "Describe a scenario in which the categorical distribution puts all the weight on a single "
            "element. What are the conditions on key and/or query for this to happen?"
        ),
        answer=r"""For any $i \ne j$, $\frac{a_i}{a_j} = \exp\big(q^Tk_i - q^Tk_j\big)$. With the gap
$\Delta = q^Tk_j - \max_{i\ne j} q^Tk_i$,
$$\frac{\sum_{i\ne j} a_i}{a_j} \le (n-1)\,e^{-\Delta},$$
so $a_j \gg \sum_{i\ne j} a_i$ as soon as $\Delta \gg \log(n-1)$: the score of key $j$ must be much
larger than every other score. This happens when the query is aligned with $k_j$ (and not with the
other keys) **and** the product is large in magnitude, e.g. $q = \beta k_j$ with a large $\beta$ and
keys that are (nearly) orthogonal, or a key $k_j$ with a much larger norm in the direction of $q$.
Scaling $q$ up is like lowering the softmax temperature: the softmax approaches a one-hot argmax.""",
        key_points=(
            "condition on the scores: q^T k_j >> q^T k_i for all i != j (a large gap, relative to log n)",
            "q aligned/similar to k_j and (nearly) orthogonal/dissimilar to the other keys",
            "large magnitude: a large norm of q or k_j (e.g. q = beta * k_j, beta large) sharpens the softmax",
        ),
        common_mistakes=(
            "only 'q similar to k_j' without the magnitude: with small norms the softmax stays diffuse",
        ),
    ),
    Answer(
        id="1.1.3",
        subtask="1.1",
        question=(
            "In this case of a single large $a$, what would the output $c$ (i.e. $o$) look like and what "
            "does it mean intuitively?"
        ),
        answer=r"""$o = a_j v_j + \sum_{i\ne j} a_i v_i \approx v_j$, and precisely
$\|o - v_j\| = \|\sum_{i\ne j} a_i (v_i - v_j)\| \le \sum_{i\ne j} a_i \|v_i - v_j\|$, which goes to 0
with the mass on the other keys. The output is (almost) a **copy** of the value vector $v_j$ whose key
matches the query: attention acts like a soft dictionary/memory lookup that retrieves one item and
ignores the rest of the sequence. This is why copying a value vector to the output is easy.""",
        key_points=(
            "o is approximately v_j (the other terms vanish)",
            "interpretation: the token copies / retrieves the information of one position (hard lookup)",
        ),
    ),
    Answer(
        id="1.2.1",
        subtask="1.2",
        question="Construct a matrix $M$ such that $Ms = v_b$ for $s = v_b + v_c$.",
        answer=r"""Take the orthogonal projection onto $B$:
$$M = \sum_{j=1}^{m} b_j b_j^T = B B^T,\qquad B = [\,b_1\ \cdots\ b_m\,] \in \mathbb{R}^{d\times m},
\quad M \in \mathbb{R}^{d\times d}.$$
With $v_b = \sum_k d_k b_k$ and $v_c = \sum_k e_k c_k$, orthonormality gives
$b_j^Tv_b = \sum_k d_k\, b_j^Tb_k = d_j$ and $b_j^Tv_c = \sum_k e_k\, b_j^Tc_k = 0$, so
$$Ms = \sum_j b_j\,(b_j^Tv_b + b_j^Tv_c) = \sum_j d_j\, b_j = v_b.$$""",
        key_points=(
            "M = sum_j b_j b_j^T = B B^T (a d x d matrix, the projection onto the subspace B)",
            "uses b_j^T b_k = delta_jk to get b_j^T v_b = d_j",
            "uses b_j^T c_k = 0 to remove v_c",
            "concludes M s = sum_j d_j b_j = v_b",
        ),
        common_mistakes=(
            "M = B^T (the basis as rows): M s gives the coordinates (d_1..d_m) in R^m, not v_b in R^d",
        ),
    ),
    Answer(
        id="1.2.2",
        subtask="1.2",
        question=(
            "With orthonormal keys, find a query $q$ such that $o \approx \frac12(v_b+v_c)$. Justify."
        ),
        answer=r"""$q = \beta\,(k_b + k_c)$ with $\beta \gg 0$. Since the keys are orthonormal,
$q^Tk_b = \beta(k_b^Tk_b + k_c^Tk_b) = \beta$, likewise $q^Tk_c = \beta$, and $q^Tk_i = 0$ for
$i \notin \{b, c\}$. Hence
$$a_b = a_c = \frac{e^\beta}{2e^\beta + n - 2},\qquad a_i = \frac{1}{2e^\beta + n - 2}\ (i\ne b,c),$$
and as $\beta \to \infty$, $a_b, a_c \to \tfrac12$ and the rest $\to 0$, so
$o \to \tfrac12(v_b + v_c)$. (The equal scores make the two weights equal; the large $\beta$ removes
the other values. Link to 1.2.1: $k_b + k_c$ is, up to scale, $M_{bc}$ applied to the keys, the query
"projects" onto the two keys it wants.)""",
        key_points=(
            "q = beta (k_b + k_c) (any equal positive coefficients on k_b and k_c)",
            "scores: q^T k_b = q^T k_c = beta, others 0, by orthonormality",
            "beta must be large so that the other n-2 weights vanish; then a_b = a_c -> 1/2",
        ),
        common_mistakes=(
            "q orthogonal to k_b and k_c (e.g. a cross product): all scores 0, uniform weights 1/n, "
            "o is the average of all n values, not of v_b and v_c (and the cross product only exists in R^3)",
            "q = k_b + k_c without a large scale: weights e/(2e+n-2), not 1/2",
        ),
    ),
    Answer(
        id="1.3.1",
        subtask="1.3",
        question=(
            r"With $\Sigma_i = \alpha I$, $\alpha$ vanishingly small, design $q$ in terms of the $\mu_i$ such "
            r"that $o = \frac12(v_b+v_c)$ and describe why it works."
        ),
        answer=r"""$q = \beta\,(\mu_b + \mu_c)$ with $\beta \gg 0$. For vanishing $\alpha$ the keys
concentrate at their means, $k_i = \mu_i + \sqrt{\alpha}\,\varepsilon_i \approx \mu_i$, so the
scores are $q^Tk_b \approx \beta$, $q^Tk_c \approx \beta$ and $q^Tk_i \approx 0$ otherwise (the means
are orthonormal). This is exactly the situation of 1.2.2: $a_b \approx a_c \approx \tfrac12$ and
$o \approx \tfrac12(v_b+v_c)$. The noise changes each score by about $\beta\sqrt{\alpha}$, which
vanishes with $\alpha$, so every sample of keys gives the same output.""",
        key_points=(
            "q = beta (mu_b + mu_c), beta large",
            "keys approximately equal their means because the covariance vanishes",
            "scores beta, beta, ~0 -> weights 1/2, 1/2, ~0 (reuse of 1.2.2)",
        ),
        common_mistakes=("a query orthogonal to mu_b and mu_c (uniform weights over all n values)",),
    ),
    Answer(
        id="1.3.2",
        subtask="1.3",
        question=(
            r"With $\Sigma_b = \alpha I + \frac12\mu_b\mu_b^T$, what does $o$ look like over sampled keys, and "
            "why does this show a drawback of single-head attention?"
        ),
        answer=r"""(The covariance is meant as the outer product $\mu_b\mu_b^T$.) Now
$k_b \approx \gamma\,\mu_b$ with a random scale $\gamma \sim \mathcal{N}(1, \tfrac12)$ (std
$\approx 0.71$): $k_b$ points along $\mu_b$ but its norm varies a lot between samples. With
$q = \beta(\mu_b + \mu_c)$ the scores are $q^Tk_b \approx \gamma\beta$ and $q^Tk_c \approx \beta$, so
(the other weights staying negligible)
$$a_b \approx \frac{e^{\gamma\beta}}{e^{\gamma\beta} + e^{\beta}} = \frac{1}{1 + e^{\beta(1-\gamma)}},
\qquad a_c \approx \frac{1}{1 + e^{\beta(\gamma-1)}}.$$
Because $\beta$ is large this sigmoid is a step: $\gamma > 1$ gives $o \approx v_b$, $\gamma < 1$
gives $o \approx v_c$, each about half of the time, and only $\gamma$ very close to 1 gives the
average. So $o = v_c + a_b(v_b - v_c)$ **oscillates between $v_b$ and $v_c$**: its mean is still
$\approx \frac12(v_b+v_c)$, but its variance is large,
$\mathrm{Cov}(o) = \mathrm{Var}(a_b)\,(v_b-v_c)(v_b-v_c)^T$ with $\mathrm{Var}(a_b) \to \tfrac14$,
whereas in 1.3.1 it was $\approx 0$. A single head has one softmax whose mass the two values must
share, so a change in the norm of one key moves mass between them. With multi-head attention each
head can attend to one value ($q_1 = \beta\mu_b$, $q_2 = \beta\mu_c$); a head that copies one value
is insensitive to that key's norm (as long as $\gamma\beta \gg \log n$), and the output projection
combines the heads into $\frac12(v_b + v_c)$ with a small variance.""",
        key_points=(
            "k_b = gamma * mu_b with a random scale gamma (variance 1/2 along mu_b): the norm of k_b varies",
            "a_b = 1/(1 + exp(beta (1 - gamma))): a steep sigmoid in gamma because beta is large",
            "o flips between ~v_b (gamma > 1) and ~v_c (gamma < 1) across samples: high variance, rarely the average",
            "drawback: one softmax, the weights compete, so the mixture is not robust to one key's norm",
            "multi-head fixes it: separate heads attend to v_b and v_c and are combined",
        ),
        common_mistakes=(
            "only saying o moves 'closer to v_b' without the variance across samples",
            "not naming why multiple heads help",
        ),
    ),
    Answer(
        id="1.4.1",
        subtask="1.4",
        question="For a sequence of $l$ tokens, memory and time complexity of one self-attention layer?",
        answer=r"""Time: the score matrix $QK^T$ has $l \times l$ entries of $d$ multiply-adds each, the
softmax is $O(l^2)$ and $AV$ is again $l^2 d$: $O(l^2 d)$ (plus $O(l d^2)$ for the projections to
$Q, K, V$), i.e. **$O(l^2)$ in $l$**. Memory: the attention matrix is $l\times l$ and $Q, K, V$ and
the output are $l\times d$: $O(l^2 + l d)$, i.e. **$O(l^2)$ in $l$**. Both are quadratic in the
sequence length.""",
        key_points=(
            "time O(l^2) (O(l^2 d) with the dimension): every token attends to every token",
            "memory O(l^2) for the l x l attention matrix (plus O(l d) for Q, K, V)",
        ),
    ),
    Answer(
        id="1.4.2",
        subtask="1.4",
        question="With $N$ layers, how do memory and time change?",
        answer=r"""Both grow linearly with the depth: time $O(N l^2)$ ($O(N l^2 d)$), and memory
$O(N l^2)$ ($O(N(l^2 + ld))$) when the attention matrices of all layers are kept, as in training for
backpropagation. (At inference a layer's attention matrix can be freed before the next layer runs, so
the peak activation memory stays $O(l^2)$; the parameters still grow with $N$.)""",
        key_points=(
            "time O(N l^2): N times one layer",
            "memory O(N l^2) when activations are stored (training); note that inference can reuse memory",
        ),
    ),
    Answer(
        id="1.4.3",
        subtask="1.4",
        question=(
            "With $l = 10{,}000$, $10$ layers and $10M$ operations per second, how long does computing the "
            "attention output take?"
        ),
        answer=r"""Counting one operation per attention score (the convention of 1.4.1 in terms of $l$):
$N l^2 = 10 \cdot (10^4)^2 = 10^9$ operations, and
$$\frac{10^9}{10^7\ \text{ops/s}} = 100\ \text{s}.$$
Counting the $d$ multiply-adds of each dot product as well multiplies this by $d$: $100\,d$
seconds, e.g. $d = 64$: $6{,}400$ s $\approx 1.8$ h; $d = 512$: $51{,}200$ s $\approx 14.2$ h.
Either convention is fine when stated; the point is the quadratic cost in $l$.""",
        key_points=(
            "N * l^2 = 10 * 10^8 = 10^9 operations",
            "10^9 / 10^7 = 100 seconds (ignoring d), or 100*d seconds when the dimension is counted, convention stated",
        ),
        common_mistakes=(
            "arithmetic: 10 * 10^8 * 512 = 5.12e11 operations, / 1e7 = 5.12e4 s (~14.2 h), not 5.12e5 s",
        ),
    ),
)


def answer(answer_id: str) -> Answer:
    """The reference answer with id ``"1.x.y"``."""
    for item in ANSWERS:
        if item.id == answer_id:
            return item
    raise KeyError(f"no Task 1 answer {answer_id!r}; known: {', '.join(a.id for a in ANSWERS)}")


def answers_as_json() -> list[dict[str, Any]]:
    return [asdict(a) | {"key_points": list(a.key_points), "common_mistakes": list(a.common_mistakes)}
            for a in ANSWERS]


# --- numbers that check the answers -------------------------------------------------------------


def softmax(scores: np.ndarray) -> np.ndarray:
    z = scores - scores.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def attend(q: np.ndarray, keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Single-query attention: ``(a, o)`` for keys/values of shape [n, d] (or [S, n, d])."""
    a = softmax(np.einsum("...nd,d->...n", keys, q))
    return a, np.einsum("...n,...nd->...d", a, values)


def orthonormal(d: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` orthonormal vectors in R^d, as the rows of a [k, d] array."""
    qmat, _ = np.linalg.qr(rng.standard_normal((d, k)))
    return qmat.T


def demo_distribution(n: int = 7, d: int = 16, seed: int = 0) -> dict[str, float]:
    """1.1.1: softmax weights are non-negative and sum to one (for arbitrary q and keys)."""
    rng = np.random.default_rng(seed)
    a, _ = attend(rng.standard_normal(d) * 3, rng.standard_normal((n, d)), rng.standard_normal((n, d)))
    return {"min_weight": float(a.min()), "sum_minus_one": float(abs(a.sum() - 1.0))}


def demo_copying(n: int = 8, d: int = 16, beta: float = 25.0, j: int = 3, seed: int = 0) -> dict[str, float]:
    """1.1.2/1.1.3: q = beta * k_j with orthonormal keys puts the mass on j and copies v_j."""
    rng = np.random.default_rng(seed)
    keys = orthonormal(d, n, rng)
    values = rng.standard_normal((n, d))
    a, o = attend(beta * keys[j], keys, values)
    bound = float(sum(a[i] * np.linalg.norm(values[i] - values[j]) for i in range(n) if i != j))
    return {
        "a_j": float(a[j]),
        "rest_mass": float(1.0 - a[j]),
        "rest_mass_bound": float((n - 1) * np.exp(-beta)),  # (n-1) e^{-gap}, gap = beta here
        "copy_error": float(np.linalg.norm(o - values[j])),
        "copy_error_bound": bound,
        "copy_error_beta_1": float(np.linalg.norm(attend(keys[j], keys, values)[1] - values[j])),
    }


def demo_projection(d: int = 12, m: int = 3, p: int = 4, seed: int = 0) -> dict[str, float]:
    """1.2.1: M = sum_j b_j b_j^T extracts v_b from v_b + v_c; the rows-of-B answer does not."""
    rng = np.random.default_rng(seed)
    basis = orthonormal(d, m + p, rng)
    b, c = basis[:m], basis[m:]
    coeff_b, coeff_c = rng.standard_normal(m), rng.standard_normal(p)
    v_b, v_c = coeff_b @ b, coeff_c @ c
    big_m = b.T @ b  # = sum_j b_j b_j^T, [d, d]
    s = v_b + v_c
    return {
        "projection_error": float(np.linalg.norm(big_m @ s - v_b)),
        "idempotence_error": float(np.linalg.norm(big_m @ big_m - big_m)),
        "rows_answer_gives_coordinates_error": float(np.linalg.norm(b @ s - coeff_b)),
        "rows_answer_shape": float((b @ s).shape[0]),  # m, not d
    }


def demo_averaging(n: int = 6, d: int = 16, beta: float = 25.0, seed: int = 0) -> dict[str, float]:
    """1.2.2: q = beta (k_b + k_c) with orthonormal keys gives o ~ (v_b + v_c) / 2."""
    rng = np.random.default_rng(seed)
    keys = orthonormal(d, n, rng)
    values = rng.standard_normal((n, d))
    b, c = 1, 4
    target = 0.5 * (values[b] + values[c])
    a, o = attend(beta * (keys[b] + keys[c]), keys, values)
    _, o_orth = attend(np.zeros(d), keys, values)  # a query orthogonal to every key: uniform weights
    _, o_unscaled = attend(keys[b] + keys[c], keys, values)
    return {
        "a_b": float(a[b]),
        "a_c": float(a[c]),
        "average_error": float(np.linalg.norm(o - target)),
        "rest_mass_formula": float((n - 2) / (2 * np.exp(beta) + n - 2)),
        "orthogonal_query_error": float(np.linalg.norm(o_orth - target)),
        "unscaled_query_error": float(np.linalg.norm(o_unscaled - target)),
    }


def demo_single_head_variance(
    n: int = 6, d: int = 16, beta: float = 25.0, alpha: float = 1e-8, samples: int = 2000, seed: int = 0
) -> dict[str, float]:
    """1.3.1/1.3.2: sample keys k_i ~ N(mu_i, Sigma_i) and look at the spread of o.

    Baseline: Sigma_i = alpha I for every key. Perturbed: Sigma_b = alpha I + 1/2 mu_b mu_b^T. Also two
    heads (q_1 = beta mu_b, q_2 = beta mu_c, outputs averaged) on the perturbed keys.
    """
    rng = np.random.default_rng(seed)
    mu = orthonormal(d, n, rng)
    values = rng.standard_normal((n, d))
    b, c = 1, 4
    target = 0.5 * (values[b] + values[c])
    q = beta * (mu[b] + mu[c])

    noise = np.sqrt(alpha) * rng.standard_normal((samples, n, d))
    keys_base = mu[None] + noise
    gamma_extra = np.sqrt(0.5) * rng.standard_normal(samples)  # N(0, 1/2) along mu_b
    keys_pert = keys_base.copy()
    keys_pert[:, b] += gamma_extra[:, None] * mu[b][None]

    def spread(outputs: np.ndarray) -> float:  # total variance: trace of the covariance
        return float(outputs.var(axis=0).sum())

    values_s = np.broadcast_to(values, (samples, n, d))
    _, o_base = attend(q, keys_base, values_s)
    a_pert, o_pert = attend(q, keys_pert, values_s)
    _, o_head1 = attend(beta * mu[b], keys_pert, values_s)
    _, o_head2 = attend(beta * mu[c], keys_pert, values_s)
    o_multi = 0.5 * (o_head1 + o_head2)

    near_b = np.linalg.norm(o_pert - values[b], axis=1) < 0.1
    near_c = np.linalg.norm(o_pert - values[c], axis=1) < 0.1
    gamma = 1.0 + gamma_extra
    predicted = 1.0 / (1.0 + np.exp(np.clip(beta * (1.0 - gamma), -700, 700)))
    return {
        "variance_baseline": spread(o_base),
        "variance_perturbed": spread(o_pert),
        "variance_multihead": spread(o_multi),
        "variance_ratio": spread(o_pert) / max(spread(o_base), 1e-300),
        "mean_error_baseline": float(np.linalg.norm(o_base.mean(axis=0) - target)),
        "mean_error_perturbed": float(np.linalg.norm(o_pert.mean(axis=0) - target)),
        "var_a_b_perturbed": float(a_pert[:, b].var()),
        "fraction_near_v_b": float(near_b.mean()),
        "fraction_near_v_c": float(near_c.mean()),
        "fraction_near_average_single": float((np.linalg.norm(o_pert - target, axis=1) < 0.1).mean()),
        "fraction_near_average_multihead": float((np.linalg.norm(o_multi - target, axis=1) < 0.1).mean()),
        "sigmoid_formula_max_error": float(np.abs(a_pert[:, b] - predicted).max()),
        "upper_bound_var_a_b": 0.25,
    }


def figure_1_4_3(
    length: int = 10_000, layers: int = 10, ops_per_second: float = 10e6, dims: tuple[int, ...] = (64, 512)
) -> dict[str, Any]:
    """1.4.3 under both conventions, and a check that the score matrix grows as l^2."""
    ops = layers * length**2
    scores_small = np.zeros((64, 8)) @ np.zeros((8, 64))  # l = 64
    scores_double = np.zeros((128, 8)) @ np.zeros((8, 128))  # l = 128
    return {
        "operations_per_score_convention": ops,
        "seconds_per_score_convention": ops / ops_per_second,
        "seconds_with_d": {str(dim): ops * dim / ops_per_second for dim in dims},
        "score_matrix_growth_when_l_doubles": scores_double.size / scores_small.size,
    }


def run_demos() -> dict[str, Any]:
    """Every demonstration, keyed by the answer it checks."""
    return {
        "1.1.1": demo_distribution(),
        "1.1.3": demo_copying(),
        "1.2.1": demo_projection(),
        "1.2.2": demo_averaging(),
        "1.3.2": demo_single_head_variance(),
        "1.4.3": figure_1_4_3(),
    }


def check_demos(demos: dict[str, Any] | None = None) -> dict[str, bool]:
    """Which answers the numbers confirm (the tests and the runner assert all of them)."""
    d = run_demos() if demos is None else demos
    var = d["1.3.2"]
    return {
        "1.1.1 weights are a distribution": d["1.1.1"]["min_weight"] >= 0 and d["1.1.1"]["sum_minus_one"] < 1e-12,
        "1.1.3 one dominant key copies v_j": d["1.1.3"]["copy_error"] < 1e-3
        and d["1.1.3"]["copy_error"] <= d["1.1.3"]["copy_error_bound"] + 1e-12,
        "1.1.2 without a large norm there is no copying": d["1.1.3"]["copy_error_beta_1"] > 0.1,
        "1.2.1 M s = v_b": d["1.2.1"]["projection_error"] < 1e-10,
        "1.2.2 beta (k_b + k_c) averages v_b and v_c": d["1.2.2"]["average_error"] < 1e-6,
        "1.2.2 an orthogonal query does not": d["1.2.2"]["orthogonal_query_error"] > 0.1,
        "1.3.1 small variance without perturbation": var["variance_baseline"] < 1e-3,
        "1.3.2 perturbing one key's norm inflates the variance": var["variance_ratio"] > 100,
        "1.3.2 outputs flip between v_b and v_c": var["fraction_near_v_b"] > 0.3 and var["fraction_near_v_c"] > 0.3,
        "1.3.2 two heads are more stable": var["variance_multihead"] < 0.5 * var["variance_perturbed"],
        "1.4.3 100 s per score convention": abs(d["1.4.3"]["seconds_per_score_convention"] - 100.0) < 1e-9,
        "1.4.1 scores grow as l^2": d["1.4.3"]["score_matrix_growth_when_l_doubles"] == 4.0,
    }
