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


def row_tile(rows: int, vectors: int):
    """An intrinsic ``tile(xf, x0, xs, wf, w0, ws, of, o0, os, k)``: rows
    r < ``rows`` of X start at xf[x0 + r·xs], row j of Wᵀ at wf[w0 + j·ws], output
    row r at of[o0 + r·os]; it writes ``vectors`` vectors of units per row."""

    @intrinsic
    def tile(typingctx, xf, x0, xs, wf, w0, ws, of, o0, os, k):
        dt = xf.dtype
        index = types.intp
        sig = types.void(xf, index, index, wf, index, index, of, index, index, index)

        def codegen(context, builder, sig, args):
            xf_, x0_, xs_, wf_, w0_, ws_, of_, o0_, os_, k_ = args
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
            with cgutils.for_range(builder, k_) as loop:
                j = loop.index
                wrow = builder.add(w0_, builder.mul(j, ws_))
                w = []
                for v in range(vectors):
                    at = builder.gep(wp, [builder.add(wrow, ir.Constant(i64, v * lanes))])
                    w.append(builder.load(builder.bitcast(at, vec.as_pointer()), align=size))
                for r in range(rows):
                    xi = builder.add(builder.add(x0_, builder.mul(ir.Constant(i64, r), xs_)), j)
                    x = builder.load(builder.gep(xp, [xi]))
                    xv = builder.shuffle_vector(
                        builder.insert_element(undef, x, first), undef, splat
                    )
                    for v in range(vectors):
                        builder.store(builder.call(fma, [xv, w[v], builder.load(acc[r][v])]),
                                      acc[r][v])  # fmt: skip
            for r in range(rows):
                orow = builder.add(o0_, builder.mul(ir.Constant(i64, r), os_))
                for v in range(vectors):
                    at = builder.gep(op, [builder.add(orow, ir.Constant(i64, v * lanes))])
                    builder.store(builder.load(acc[r][v]), builder.bitcast(at, vec.as_pointer()),
                                  align=size)  # fmt: skip
            return context.get_dummy_value()

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
