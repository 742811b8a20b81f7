import Foundation
import Synchronization
import Testing
import LRTrain

/// The one pool of trainers on threads (compare's runs, a sweep's trials, a fork's branches).
@Suite struct TrainerPoolTests {
    final class Tally: Sendable {
        let state = Mutex((running: 0, most: 0, ran: [Int]()))
        func enter(_ i: Int) { state.withLock { $0.running += 1; $0.most = max($0.most, $0.running); $0.ran.append(i) } }
        func leave() { state.withLock { $0.running -= 1 } }
    }

    @Test func everyJobRunsOnceAtMostWidthAtATimeInOrder() {
        let tally = Tally()
        TrainerPool(count: 7, width: 3, name: "test") { i in
            tally.enter(i)
            Thread.sleep(forTimeInterval: 0.01)
            tally.leave()
        }.run()
        let s = tally.state.withLock { $0 }
        #expect(s.ran.sorted() == Array(0..<7) && s.ran.prefix(3).sorted() == [0, 1, 2])
        #expect(s.most <= 3 && s.most >= 2)
        #expect(s.running == 0)
    }

    @Test func afterAStopNoJobStartsAndTheRunningOnesFinish() {
        let tally = Tally()
        let stop = Atomic(false)
        TrainerPool(count: 10, width: 2, name: "test") { i in
            tally.enter(i)
            if i == 2 { stop.store(true, ordering: .relaxed) }
            Thread.sleep(forTimeInterval: 0.01)
            tally.leave()
        }.run(stop: { stop.load(ordering: .relaxed) })
        let ran = tally.state.withLock { $0.ran }
        #expect(ran.count < 10 && ran.contains(2))
        #expect(tally.state.withLock { $0.running } == 0)
    }

    @Test func aLoopThatMustNotBlockFillsItTurnByTurnAndCanCloseIt() {
        let tally = Tally()
        let pool = TrainerPool(count: 5, width: 1, name: "test") { i in
            tally.enter(i)
            Thread.sleep(forTimeInterval: 0.02)
            tally.leave()
        }
        pool.fill()
        #expect(pool.started == 1 && !pool.isDone)
        while pool.started < 2 { pool.fill(); Thread.sleep(forTimeInterval: 0.005) }
        let never = pool.close()
        #expect(never == 2..<5)
        while !pool.isDone { Thread.sleep(forTimeInterval: 0.005) }
        #expect(tally.state.withLock { $0.ran } == [0, 1])
    }
}
