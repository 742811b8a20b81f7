import Foundation
import LRTensor

/// A model's weights as PyTorch's `state_dict()` of its twin has them (bench/parity.py builds the twins): the same
/// names (`fc1.weight`, `stem.bn.running_var`, …), the same shapes, Float32, and each BatchNorm's
/// `num_batches_tracked` as an Int64 scalar. So `model.load_state_dict(safetensors.torch.load_file(path))` takes
/// what `lrtop export-weights` writes, and `lrtop train --init` takes what `save_file(model.state_dict(), path)` writes.
extension Network {
    static let counterSuffix = ".num_batches_tracked"

    /// The tensors of the twin's `state_dict()`, in its order (each module's parameters, then its buffers).
    public func stateDictTensors() -> [Safetensors.Tensor] {
        var out: [Safetensors.Tensor] = []
        for p in parameters { out.append(Safetensors.Tensor(name: p.name, shape: p.shape, floats: p.value.storage)) }
        for b in buffers {
            if b.name.hasSuffix(Self.counterSuffix) {
                out.append(Safetensors.Tensor(name: b.name, shape: [], int64: [Int64(b.tensor.storage[0])]))
            } else {
                out.append(Safetensors.Tensor(name: b.name, shape: b.tensor.shape, floats: b.tensor.storage))
            }
        }
        return out
    }

    /// A safetensors file of `stateDictTensors()`; `metadata` goes to `__metadata__` (with `format: pt`, as
    /// `safetensors.torch.save_file` writes it).
    public func safetensorsBytes(metadata: [String: String] = [:]) -> [UInt8] {
        var meta = metadata
        meta["format"] = meta["format"] ?? "pt"
        return Safetensors.encode(stateDictTensors(), metadata: meta)
    }

    /// Loads every parameter and buffer from `file`, strictly like `load_state_dict`: each tensor present with the
    /// model's shape, in a float dtype (F32, F16 or BF16; counters as integers), and nothing the model lacks.
    /// Throws a `SafetensorsError` naming the tensor and the problem; on error nothing is changed.
    public func load(_ file: Safetensors) throws {
        func bad(_ what: String) -> SafetensorsError { SafetensorsError("\(file.source): \(what)") }
        var assignments: [(Tensor, [Float])] = []
        var expected = Set<String>()
        for (name, target) in parameters.map({ ($0.name, $0.value) }) + buffers.map({ ($0.name, $0.tensor) }) {
            expected.insert(name)
            guard let entry = file[name] else {
                throw bad("no tensor '\(name)': model \(summary) needs it (was the file saved from the twin of this model, with the same --model and --hidden?)")
            }
            if name.hasSuffix(Self.counterSuffix) {
                guard entry.elementCount == 1 else {
                    throw bad("tensor '\(name)' has shape \(entry.shape), expected a scalar count")
                }
                let count = try file.integers(entry)[0]
                guard count >= 0 else { throw bad("tensor '\(name)' is \(count), a count cannot be negative") }
                assignments.append((target, [Float(count)]))
                continue
            }
            guard entry.shape == target.shape else {
                throw bad("tensor '\(name)' has shape \(entry.shape), model \(summary) needs \(target.shape): check --model and --hidden")
            }
            let values = try file.floats(entry)
            if let i = values.firstIndex(where: { !$0.isFinite }) {
                throw bad("tensor '\(name)' holds \(values[i]) at index \(i): weights must be finite")
            }
            assignments.append((target, values))
        }
        if let extra = file.names.sorted().first(where: { !expected.contains($0) }) {
            throw bad("tensor '\(extra)' is not in model \(summary) (is it the twin of another model, or other --hidden sizes?)")
        }
        for (target, values) in assignments { target.storage = values }
    }
}
