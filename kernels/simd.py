"""A matrix-product tile written in LLVM vector instructions, for sums whose order
must not depend on the data's position.

``row_tile(rows, vectors)`` builds an intrinsic that computes, for ``rows`` rows of X
and ``vectors`` vectors of units of Wᵀ,

    out[r, u] = fma(X[r, K-1], Wᵀ[K-1, u], ... fma(X[r, 0], Wᵀ[0, u], +0))

one fused multiply-add per input, in input order, for every output element alike:
the vectors run across units and the rows are separate registers, so no element's
sum is split into lanes. The result of a row is therefore the same bits whatever
the other rows of the tile are, whether the row sits in a full tile or a one-row
tile, and whatever the vector width of the machine (``llvm.fma`` is one rounding on
every target). The tile's shape only chooses how many sums run at once.
"""

from __future__ import annotations

import llvmlite.binding as llvm
from llvmlite import ir
from numba import types
from numba.core import cgutils, config
from numba.extending import intrinsic

#: Bytes of one vector of units: 16 float32 or 8 float64 (two registers on AVX2).
VECTOR_BYTES = 64


def wide_registers() -> bool:
    """Whether the compile target has 32 AVX-512 registers (more sums fit at once)."""
    features = config.CPU_FEATURES
    if features is None:
        features = llvm.get_host_cpu_features().flatten()
    return "+avx512f" in features.split(",")


def row_tile(rows: int, vectors: int, update: bool = False):
    """An intrinsic ``tile(xf, x0, xs, wf, w0, ws, of, o0, os, k)``: rows
    r < ``rows`` of X start at xf[x0 + r·xs], row j of Wᵀ at wf[w0 + j·ws], output
    row r at of[o0 + r·os]; it writes ``vectors`` vectors of units per row.

    With ``update``, ``tile(xf, x0, xs, wf, w0, ws, of, o0, os, k, scale)`` applies
    each sum to the output instead: out = fma(-scale, sum, out), one rounding (an
    SGD step W -= lr·Gᵀ·X with W as the output)."""

    def codegen(context, builder, sig, args):
        xf_, x0_, xs_, wf_, w0_, ws_, of_, o0_, os_, k_ = args[:10]
        dt = sig.args[0].dtype
        scalar = context.get_value_type(dt)
        size = dt.bitwidth // 8
        lanes = VECTOR_BYTES // size
        vec = ir.VectorType(scalar, lanes)
        i64 = ir.IntType(64)
        xp = context.make_array(sig.args[0])(context, builder, xf_).data
        wp = context.make_array(sig.args[3])(context, builder, wf_).data
        op = context.make_array(sig.args[6])(context, builder, of_).data
        fma = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vec, [vec] * 3), f"llvm.fma.v{lanes}f{dt.bitwidth}"
        )
        # Stack slots in the entry block: the optimiser keeps them in registers.
        zero = ir.Constant(vec, None)
        acc = [[cgutils.alloca_once_value(builder, zero) for _ in range(vectors)]
               for _ in range(rows)]  # fmt: skip
        undef = ir.Constant(vec, ir.Undefined)
        splat = ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes)
        first = ir.Constant(ir.IntType(32), 0)

        def broadcast(x):
            return builder.shuffle_vector(builder.insert_element(undef, x, first), undef, splat)

        with cgutils.for_range(builder, k_) as loop:
            j = loop.index
            wrow = builder.add(w0_, builder.mul(j, ws_))
            w = []
            for v in range(vectors):
                at = builder.gep(wp, [builder.add(wrow, ir.Constant(i64, v * lanes))])
                w.append(builder.load(builder.bitcast(at, vec.as_pointer()), align=size))
            for r in range(rows):
                xi = builder.add(builder.add(x0_, builder.mul(ir.Constant(i64, r), xs_)), j)
                xv = broadcast(builder.load(builder.gep(xp, [xi])))
                for v in range(vectors):
                    builder.store(builder.call(fma, [xv, w[v], builder.load(acc[r][v])]),
                                  acc[r][v])  # fmt: skip
        neg = broadcast(builder.fneg(args[10])) if update else None
        for r in range(rows):
            orow = builder.add(o0_, builder.mul(ir.Constant(i64, r), os_))
            for v in range(vectors):
                at = builder.gep(op, [builder.add(orow, ir.Constant(i64, v * lanes))])
                ptr = builder.bitcast(at, vec.as_pointer())
                value = builder.load(acc[r][v])
                if update:
                    value = builder.call(fma, [neg, value, builder.load(ptr, align=size)])
                builder.store(value, ptr, align=size)
        return context.get_dummy_value()

    index = types.intp
    if update:

        @intrinsic
        def tile(typingctx, xf, x0, xs, wf, w0, ws, of, o0, os, k, scale):
            sig = types.void(xf, index, index, wf, index, index, of, index, index, index,
                             xf.dtype)  # fmt: skip
            return sig, codegen

    else:

        @intrinsic
        def tile(typingctx, xf, x0, xs, wf, w0, ws, of, o0, os, k):
            sig = types.void(xf, index, index, wf, index, index, of, index, index, index)
            return sig, codegen

    return tile


#: Rows per tile and vectors of units per tile: AVX-512's 32 registers hold 16 sums
#: (8 rows of 2 vectors) and the loads; AVX2's 16 hold 6 rows of one vector, which
#: takes two of its registers.
_WIDE = wide_registers()
TILE_ROWS = 8 if _WIDE else 6
TILE_VECTORS = 2 if _WIDE else 1
tile_full = row_tile(TILE_ROWS, TILE_VECTORS)
tile_one = row_tile(1, TILE_VECTORS)
#: One vector wide, for a row's last units; and the same with the update epilogue.
tile_full_1 = row_tile(TILE_ROWS, 1)
tile_one_1 = row_tile(1, 1)
tile_full_update = row_tile(TILE_ROWS, TILE_VECTORS, update=True)
tile_one_update = row_tile(1, TILE_VECTORS, update=True)
tile_full_update_1 = row_tile(TILE_ROWS, 1, update=True)
tile_one_update_1 = row_tile(1, 1, update=True)


#: Lanes of one accumulator of ``lane_dot``: 32 bytes, 8 float32 or 4 float64.
DOT_LANE_BYTES = 32
#: Accumulators of ``lane_dot``: four independent chains hide the latency of a
#: fused multiply-add.
DOT_ACCUMULATORS = 4


def _indices(values) -> ir.Constant:
    """A constant vector of i32 lane indices, for a shuffle."""
    values = list(values)
    return ir.Constant(ir.VectorType(ir.IntType(32), len(values)), values)


def lane_dot(update: bool):
    """An intrinsic for the dot product of a weight row with an input, in an order
    fixed by the length alone.

    ``dot(wf, w0, xf, x0, n)`` returns Σ wf[w0 + c]·xf[x0 + c] over c < n. Element c
    of the first ``n // L`` groups of L lanes (``DOT_LANE_BYTES``) goes to lane
    c mod L of accumulator (c // L) mod ``DOT_ACCUMULATORS``, one fused multiply-add
    each, in input order; the accumulators are added pairwise, then the lanes
    halves by halves; the last ``n mod L`` products are added to that one at a time,
    in input order. Every step is written out in vector instructions without
    reassociation, so nothing the compiler or the data's address chooses can change
    the order: a row's result is the same bits in every loop, on every heap.

    With ``update``, ``dot(wf, w0, xp, p0, step, xn, n0, n)`` first updates each
    weight, w = fma(-step, xp[p0 + c], wf[w0 + c]), stores it, and sums w·xn[n0 + c]
    in the same order: one sample's SGD step and the next sample's forward, in one
    pass over the row.
    """

    def codegen(context, builder, sig, args):
        dt = sig.return_type
        scalar = context.get_value_type(dt)
        size = dt.bitwidth // 8
        lanes = DOT_LANE_BYTES // size
        vec = ir.VectorType(scalar, lanes)
        i64 = ir.IntType(64)
        ptrs = [context.make_array(sig.args[i])(context, builder, args[i]).data
                for i in ((0, 2, 5) if update else (0, 2))]  # fmt: skip
        if update:
            _, w0, _, p0, step, _, n0, n = args
            starts = (w0, p0, n0)
            neg = builder.fneg(step)
            one = builder.insert_element(
                ir.Constant(vec, ir.Undefined), neg, ir.Constant(ir.IntType(32), 0)
            )
            negv = builder.shuffle_vector(one, one, _indices([0] * lanes))
        else:
            _, w0, _, x0, n = args
            starts = (w0, x0)
        fma_v = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vec, [vec] * 3), f"llvm.fma.v{lanes}f{dt.bitwidth}"
        )
        fma_s = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(scalar, [scalar] * 3), f"llvm.fma.f{dt.bitwidth}"
        )

        def load(j, c, width):
            at = builder.gep(ptrs[j], [builder.add(starts[j], c)])
            if width == 1:
                return at, builder.load(at)
            return at, builder.load(builder.bitcast(at, vec.as_pointer()), align=size)

        def step_at(c, acc, width):
            """One group (or one element) at c: the update, then acc += w·x."""
            fma = fma_v if width > 1 else fma_s
            at, w = load(0, c, width)
            if update:
                _, xp = load(1, c, width)
                w = builder.call(fma, [negv if width > 1 else neg, xp, w])
                if width > 1:
                    builder.store(w, builder.bitcast(at, vec.as_pointer()), align=size)
                else:
                    builder.store(w, at)
            _, x = load(len(ptrs) - 1, c, width)
            return builder.call(fma, [w, x, acc])

        zero = ir.Constant(vec, None)
        acc = [cgutils.alloca_once_value(builder, zero) for _ in range(DOT_ACCUMULATORS)]
        chunk = lanes * DOT_ACCUMULATORS
        full = builder.udiv(n, ir.Constant(i64, chunk))
        with cgutils.for_range(builder, full) as loop:
            base = builder.mul(loop.index, ir.Constant(i64, chunk))
            for a in range(DOT_ACCUMULATORS):
                c = builder.add(base, ir.Constant(i64, a * lanes))
                builder.store(step_at(c, builder.load(acc[a]), lanes), acc[a])
        # The groups of L lanes left over go to accumulators 0, 1, ... in turn.
        done = builder.mul(full, ir.Constant(i64, chunk))
        groups = builder.udiv(builder.sub(n, done), ir.Constant(i64, lanes))
        for a in range(DOT_ACCUMULATORS - 1):
            with builder.if_then(builder.icmp_unsigned(">", groups, ir.Constant(i64, a))):
                c = builder.add(done, ir.Constant(i64, a * lanes))
                builder.store(step_at(c, builder.load(acc[a]), lanes), acc[a])
        total = cgutils.alloca_once_value(builder, ir.Constant(scalar, 0.0))
        with builder.if_then(builder.icmp_unsigned(">=", n, ir.Constant(i64, lanes))):
            flags = ("nsz",)  # set, so no reassociation is added to these adds
            v = [builder.load(a) for a in acc]
            while len(v) > 1:
                v = [builder.fadd(v[i], v[i + 1], flags=flags) for i in range(0, len(v), 2)]
            v, width = v[0], lanes
            while width > 1:
                width //= 2
                lo, hi = (builder.shuffle_vector(v, v, _indices(range(k, k + width)))
                          for k in (0, width))  # fmt: skip
                v = builder.fadd(lo, hi, flags=flags)
            builder.store(builder.extract_element(v, ir.Constant(ir.IntType(32), 0)), total)
        tail = builder.add(done, builder.mul(groups, ir.Constant(i64, lanes)))
        with cgutils.for_range(builder, builder.sub(n, tail)) as loop:
            c = builder.add(tail, loop.index)
            builder.store(step_at(c, builder.load(total), 1), total)
        return builder.load(total)

    index = types.intp
    if update:

        @intrinsic
        def dot(typingctx, wf, w0, xp, p0, step, xn, n0, n):
            return wf.dtype(wf, index, xp, index, wf.dtype, xn, index, index), codegen

    else:

        @intrinsic
        def dot(typingctx, wf, w0, xf, x0, n):
            return wf.dtype(wf, index, xf, index, index), codegen

    return dot


dot = lane_dot(update=False)
update_dot = lane_dot(update=True)


@intrinsic
def fma(typingctx, a, b, c):
    """a·b + c with one rounding (``llvm.fma``), in loops the compiler vectorises:
    the same bits in the vector loop and in its scalar remainder."""
    sig = a(a, a, a)

    def codegen(context, builder, sig, args):
        t = context.get_value_type(sig.return_type)
        name = f"llvm.fma.f{sig.return_type.bitwidth}"
        f = cgutils.get_or_insert_function(builder.module, ir.FunctionType(t, [t] * 3), name)
        return builder.call(f, list(args))

    return sig, codegen
