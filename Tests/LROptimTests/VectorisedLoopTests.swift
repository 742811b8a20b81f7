import Foundation
import Testing
import LROptim
import LRTensor

/// The optimizers' loops are specialised so that LLVM vectorises them, and the package builds for AVX2 + FMA. The
/// golden files allow a relative error of 1e-4; these tests hold the vectorised loops to the reference's scalar op
/// order bit for bit, so a reassociation, an FMA contraction or a wrong specialisation fails here.
@Suite struct VectorisedLoopTests {
    /// 1003 elements: not a multiple of any vector width, so the scalar tail runs too.
    static let sizes = [1003, 7]

    /// Runs `spec` for 12 steps next to `reference` (one step over plain arrays, the loop as it was before it was
    /// vectorised) and compares every bit of the parameters.
    static func compare(_ spec: String,
                        reference: (_ hyper: [String: Double], _ lr: Double, _ step: Double,
                                    _ w: inout [Float], _ g: [Float], _ state: inout [String: [Float]]) -> Void) throws {
        let params = sizes.enumerated().map { i, n in
            Parameter(name: "p\(i)", value: Tensor(shape: [n], storage: (0..<n).map { Float($0 % 17) * 0.01 - 0.08 }))
        }
        let opt = try OptimizerFactory.make(spec: spec, parameters: params)
        var expected = params.map { $0.value.storage }
        var states = params.map { _ in [String: [Float]]() }
        var rng = Grads(state: 7)
        for step in 1...12 {
            rng.fill(params)
            if step % 5 == 0 { for p in params { p.grad.scale(by: 1e-4) } }  // small gradients: the other lerp branch
            for (i, p) in params.enumerated() {
                reference(opt.groups[0].hyper, opt.groups[0].lr, Double(step), &expected[i], p.grad.storage, &states[i])
            }
            opt.step()
            for (i, p) in params.enumerated() {
                let same = zip(p.value.storage, expected[i]).allSatisfy { $0.bitPattern == $1.bitPattern }
                #expect(same, "\(spec): \(p.name) differs from the scalar reference at step \(step)")
                if !same { return }
            }
        }
    }

    /// PyTorch's `lerp` for one element.
    static func lerp(_ a: Float, _ b: Float, _ w: Float) -> Float {
        abs(w) < 0.5 ? a + w * (b - a) : b - (b - a) * (1 - w)
    }

    @Test(arguments: ["adam", "adam:weight_decay=0.01", "adamw", "adamw:weight_decay=0", "adam:maximize=true",
                      "adam:amsgrad=true,weight_decay=0.01", "adamw:amsgrad=true,maximize=true", "adamw:betas=0.3/0.999"])
    func adamMatchesTheScalarLoop(_ spec: String) throws {
        let decoupledKind = spec.hasPrefix("adamw")
        try Self.compare(spec) { h, lr, step, w, grad, state in
            let n = w.count
            var m = state["m"] ?? [Float](repeating: 0, count: n), v = state["v"] ?? m, vmax = state["vmax"] ?? m
            let b1 = h["beta1"]!, b2 = h["beta2"]!, wdD = h["weight_decay"]!
            let decoupled = decoupledKind && wdD != 0, l2 = !decoupledKind && wdD != 0
            let sgn: Float = h["maximize"]! != 0 ? -1 : 1
            let decay = Float(1 - lr * wdD), wd = Float(wdD), w1 = Float(1 - b1), fb2 = Float(b2), w2 = Float(1 - b2)
            let bc2Sqrt = Float(pow(1 - pow(b2, step), 0.5)), eps = Float(h["eps"]!)
            let negStep = Float(-(lr / (1 - pow(b1, step))))
            for i in 0..<n {
                var g = sgn * grad[i]
                if decoupled { w[i] = w[i] * decay }
                if l2 { g = g + wd * w[i] }
                let mi = Self.lerp(m[i], g, w1)
                m[i] = mi
                var vi = v[i] * fb2 + w2 * g * g
                v[i] = vi
                if h["amsgrad"]! != 0 { vi = max(vmax[i], vi); vmax[i] = vi }
                let denom = vi.squareRoot() / bc2Sqrt + eps
                w[i] = w[i] + negStep * (mi / denom)
            }
            state = ["m": m, "v": v, "vmax": vmax]
        }
    }

    @Test(arguments: ["rmsprop", "rmsprop:weight_decay=0.01", "rmsprop:momentum=0.9", "rmsprop:centered=true",
                      "rmsprop:centered=true,momentum=0.9,maximize=true"])
    func rmspropMatchesTheScalarLoop(_ spec: String) throws {
        try Self.compare(spec) { h, lr, _, w, grad, state in
            let n = w.count
            var v = state["v"] ?? [Float](repeating: 0, count: n), b = state["b"] ?? v, ga = state["ga"] ?? v
            let a = Float(h["alpha"]!), oneMinusA = Float(1 - h["alpha"]!), wdD = h["weight_decay"]!, wd = Float(wdD)
            let mom = Float(h["momentum"]!), eps = Float(h["eps"]!), negLR = Float(-lr)
            let sgn: Float = h["maximize"]! != 0 ? -1 : 1
            for i in 0..<n {
                var g = sgn * grad[i]
                if wdD != 0 { g = g + wd * w[i] }
                v[i] = v[i] * a + oneMinusA * g * g
                var avg: Float
                if h["centered"]! != 0 {
                    let m = Self.lerp(ga[i], g, oneMinusA)
                    ga[i] = m
                    avg = (v[i] + (-1) * m * m).squareRoot()
                } else {
                    avg = v[i].squareRoot()
                }
                avg = avg + eps
                if mom > 0 {
                    b[i] = b[i] * mom + 1 * (g / avg)
                    w[i] = w[i] + negLR * b[i]
                } else {
                    w[i] = w[i] + negLR * (g / avg)
                }
            }
            state = ["v": v, "b": b, "ga": ga]
        }
    }

    @Test(arguments: ["radam", "radam:weight_decay=0.01", "radam:weight_decay=0.01,decoupled_weight_decay=true"])
    func radamMatchesTheScalarLoop(_ spec: String) throws {
        try Self.compare(spec) { h, lr, step, w, grad, state in
            let n = w.count
            var m = state["m"] ?? [Float](repeating: 0, count: n), v = state["v"] ?? m
            let b1 = h["beta1"]!, b2 = h["beta2"]!, wdD = h["weight_decay"]!
            let decoupled = h["decoupled_weight_decay"]! != 0
            let sgn: Float = h["maximize"]! != 0 ? -1 : 1
            let decay = Float(1 - lr * wdD), wd = Float(wdD), w1 = Float(1 - b1), fb2 = Float(b2), w2 = Float(1 - b2)
            let bc1 = 1 - pow(b1, step), bc2 = 1 - pow(b2, step)
            let rhoInf = 2 / (1 - b2) - 1
            let rhoT = rhoInf - 2 * step * pow(b2, step) / bc2
            let rectified = rhoT > 5.0
            let rect = rectified ? pow((rhoT - 4) * (rhoT - 2) * rhoInf / ((rhoInf - 4) * (rhoInf - 2) * rhoT), 0.5) : 0
            let fbc1 = Float(bc1), flr = Float(lr), frect = Float(rect), bc2Sqrt = Float(pow(bc2, 0.5))
            let eps = Float(h["eps"]!)
            for i in 0..<n {
                var g = sgn * grad[i]
                if wdD != 0 { if decoupled { w[i] = w[i] * decay } else { g = g + wd * w[i] } }
                let mi = Self.lerp(m[i], g, w1)
                m[i] = mi
                let vi = v[i] * fb2 + w2 * g * g
                v[i] = vi
                let corrected = mi / fbc1
                if rectified {
                    let adaptive = bc2Sqrt / (vi.squareRoot() + eps)
                    w[i] = w[i] + (-1) * (corrected * flr * adaptive * frect)
                } else {
                    w[i] = w[i] + (-1) * (corrected * flr)
                }
            }
            state = ["m": m, "v": v]
        }
    }
}
