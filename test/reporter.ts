import Mocha from 'mocha';

/**
 * Mocha's spec reporter plus the plain closing line CI reads: `N passed, N failed, N skipped`.
 */
class DevicemeshReporter extends Mocha.reporters.Spec {
  constructor(runner: Mocha.Runner, options?: Mocha.MochaOptions) {
    super(runner, options);
    runner.once('end', () => {
      const s = runner.stats ?? { passes: 0, failures: 0, pending: 0 };
      process.stdout.write(`\n${s.passes} passed, ${s.failures} failed, ${s.pending} skipped\n`);
    });
  }
}

export = DevicemeshReporter;
