// Runs the NUnit tests of ChordTests.cs by direct calls (no reflection-driven runner), so that the
// whole program can be compiled ahead of time: `mono --full-aot` then fails on any callback that
// would need the JIT, as IL2CPP fails at build time. Exit 0 when every test passed.
using System;

static class FullAotRunner
{
    static int Main()
    {
        var t = new ChordTests();
        var tests = new Action[] {
            t.GreedyTextInEveryForm, t.CancellationStopsWithinAToken, t.ErrorsCarryTheStatus,
            t.AbiMismatchNamesBothVersions, t.LogMessagesDuringGarbageCollectionAndHandlesFreed,
        };
        int failed = 0;
        foreach (var test in tests)
        {
            try { test(); Console.WriteLine("ok   " + test.Method.Name); }
            catch (Exception e) { failed++; Console.WriteLine("FAIL " + test.Method.Name + ": " + e); }
        }
        Console.WriteLine((tests.Length - failed) + " passed, " + failed + " failed");
        return failed == 0 ? 0 : 1;
    }
}
