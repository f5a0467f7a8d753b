import Foundation

/// Inline SVG charts with titles, labelled axes with units, thinned tick labels (1 to 365+
/// points) and compact number formatting (tiny to huge values).
enum SVGChart {
    struct Series {
        var name: String
        var values: [Double?]
        var color: String
    }

    static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]

    static func esc(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// 1234 → "1.2k", 0.0042 → "0.0042", 3_500_000 → "3.5M".
    static func compact(_ v: Double) -> String {
        let a = abs(v)
        if a == 0 { return "0" }
        if a >= 1e9 { return trim(v / 1e9) + "G" }
        if a >= 1e6 { return trim(v / 1e6) + "M" }
        if a >= 1e4 { return trim(v / 1e3) + "k" }
        if a >= 1 { return trim(v) }
        return String(format: "%.2g", v)
    }

    static func trim(_ v: Double) -> String {
        let s = String(format: abs(v) >= 100 ? "%.0f" : "%.1f", v)
        return s.hasSuffix(".0") ? String(s.dropLast(2)) : s
    }

    /// Nice tick values from 0 (or the minimum) to at least `max`.
    static func ticks(max: Double) -> [Double] {
        guard max > 0 else { return [0, 1] }
        let raw = max / 4
        let mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
        return (0...Int(ceil(max / step))).map { Double($0) * step }
    }

    /// A line chart (or stacked bars with `stacked`) over labelled x positions.
    static func chart(title: String, yLabel: String, xLabel: String, x: [String], series: [Series], stacked: Bool = false, logScale: Bool = false) -> String {
        let w = 900.0, h = 280.0, left = 70.0, right = 20.0, top = 34.0, bottom = 48.0
        let pw = w - left - right, ph = h - top - bottom
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(Int(w)) \(Int(h + 22))\" role=\"img\" aria-label=\"\(esc(title))\">"
        svg += "<text x=\"\(w / 2)\" y=\"20\" text-anchor=\"middle\" class=\"title\">\(esc(title))</text>"
        let n = x.count
        guard n > 0, series.contains(where: { $0.values.contains { $0 != nil } }) else {
            svg += "<text x=\"\(w / 2)\" y=\"\(h / 2)\" text-anchor=\"middle\" class=\"empty\">no data for this period</text></svg>"
            return svg
        }
        var maxV = 0.0
        if stacked {
            for i in 0..<n { maxV = Swift.max(maxV, series.map { $0.values[i] ?? 0 }.reduce(0, +)) }
        } else {
            maxV = series.flatMap { $0.values.compactMap { $0 } }.max() ?? 0
        }
        let logMin = 0.1
        let yTicks: [Double] = logScale
            ? (Int(floor(log10(logMin)))...Swift.max(Int(ceil(log10(Swift.max(maxV, 1)))), 0)).map { pow(10, Double($0)) }
            : ticks(max: maxV)
        let top0 = yTicks.last ?? 1
        func y(_ v: Double) -> Double {
            if logScale {
                let lv = log10(Swift.max(v, logMin)), lmin = log10(yTicks.first!), lmax = log10(top0)
                return top + ph - (lv - lmin) / Swift.max(lmax - lmin, 1e-9) * ph
            }
            return top + ph - v / top0 * ph
        }
        let slot = pw / Double(n)
        func xc(_ i: Int) -> Double { left + slot * (Double(i) + 0.5) }
        // Axes, grid and tick labels.
        for t in yTicks {
            svg += "<line x1=\"\(left)\" x2=\"\(left + pw)\" y1=\"\(y(t))\" y2=\"\(y(t))\" class=\"grid\"/>"
            svg += "<text x=\"\(left - 6)\" y=\"\(y(t) + 4)\" text-anchor=\"end\" class=\"tick\">\(compact(t))</text>"
        }
        svg += "<line x1=\"\(left)\" x2=\"\(left)\" y1=\"\(top)\" y2=\"\(top + ph)\" class=\"axis\"/><line x1=\"\(left)\" x2=\"\(left + pw)\" y1=\"\(top + ph)\" y2=\"\(top + ph)\" class=\"axis\"/>"
        let every = Swift.max(1, Int(ceil(Double(n) / 12)))
        for i in stride(from: 0, to: n, by: every) {
            svg += "<text x=\"\(xc(i))\" y=\"\(top + ph + 16)\" text-anchor=\"middle\" class=\"tick\">\(esc(x[i]))</text>"
        }
        svg += "<text x=\"\(left + pw / 2)\" y=\"\(h - 6)\" text-anchor=\"middle\" class=\"label\">\(esc(xLabel))</text>"
        svg += "<text transform=\"translate(16 \(top + ph / 2)) rotate(-90)\" text-anchor=\"middle\" class=\"label\">\(esc(yLabel))\(logScale ? " (log scale)" : "")</text>"
        if stacked {
            let bw = Swift.max(1, slot * 0.8)
            for i in 0..<n {
                var base = 0.0
                for s in series {
                    let v = s.values[i] ?? 0
                    guard v > 0 else { continue }
                    svg += "<rect x=\"\(xc(i) - bw / 2)\" y=\"\(y(base + v))\" width=\"\(bw)\" height=\"\(Swift.max(0.5, y(base) - y(base + v)))\" fill=\"\(s.color)\"><title>\(esc(x[i])) \(esc(s.name)): \(compact(v))</title></rect>"
                    base += v
                }
            }
        } else {
            for s in series {
                var path = ""
                var pen = false
                for i in 0..<n {
                    guard let v = s.values[i] else { pen = false; continue }
                    path += "\(pen ? "L" : "M")\(String(format: "%.1f", xc(i))) \(String(format: "%.1f", y(v)))"
                    pen = true
                }
                svg += "<path d=\"\(path)\" fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"2\"/>"
                if n <= 60 { for i in 0..<n { if let v = s.values[i] { svg += "<circle cx=\"\(xc(i))\" cy=\"\(y(v))\" r=\"2.5\" fill=\"\(s.color)\"><title>\(esc(x[i])) \(esc(s.name)): \(compact(v))</title></circle>" } } }
            }
        }
        // Legend.
        var lx = left
        for s in series {
            svg += "<rect x=\"\(lx)\" y=\"\(h + 6)\" width=\"10\" height=\"10\" fill=\"\(s.color)\"/><text x=\"\(lx + 14)\" y=\"\(h + 15)\" class=\"tick\">\(esc(s.name))</text>"
            lx += 24 + Double(s.name.count) * 7
        }
        return svg + "</svg>"
    }
}
