import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CONTROLLER_NAMES, type ControllerName } from './config.js';
import {
  CONTROLLER_CRDS,
  crdName,
  deletedCrdMessage,
  missingCrdMessage,
  missingCrds,
  requiredCrds,
  type DiscoveryAnswer,
} from './required-crds.js';

describe('requiredCrds', () => {
  const cases: Array<[string, ControllerName[], Array<[string, ControllerName[]]>]> = [
    ['none selected', [], []],
    ['app only', ['app'], [['apps.kappctrl.k14s.io', ['app']]]],
    [
      'a CRD two controllers need is listed once, with both',
      ['secretimport', 'placeholder'],
      [
        ['secretimports.secretgen.carvel.dev', ['secretimport']],
        ['secretexports.secretgen.carvel.dev', ['secretimport', 'placeholder']],
      ],
    ],
    [
      'packaging',
      ['packagerepository', 'packageinstall'],
      [
        ['packagerepositories.packaging.carvel.dev', ['packagerepository']],
        ['packages.data.packaging.carvel.dev', ['packagerepository', 'packageinstall']],
        ['packagemetadatas.data.packaging.carvel.dev', ['packagerepository']],
        ['packageinstalls.packaging.carvel.dev', ['packageinstall']],
        ['apps.kappctrl.k14s.io', ['packageinstall']],
      ],
    ],
  ];
  for (const [name, controllers, want] of cases) {
    it(name, () =>
      assert.deepEqual(
        requiredCrds(controllers).map((c) => [c.name, c.controllers]),
        want,
      ),
    );
  }

  it('every CRD in crds/ is needed by some controller, and every needed CRD is in crds/', () => {
    const files = readdirSync(fileURLToPath(new URL('../crds/', import.meta.url)))
      .filter((f) => f.endsWith('.yaml'))
      // crds/<group>_<plural>.yaml is the CRD <plural>.<group>
      .map((f) => {
        const [group = '', plural = ''] = f.replace(/\.yaml$/, '').split('_');
        return `${plural}.${group}`;
      })
      .sort();
    const needed = [...new Set(CONTROLLER_NAMES.flatMap((c) => CONTROLLER_CRDS[c].map(crdName)))].sort();
    assert.deepEqual(needed, files);
  });
});

describe('missing CRD messages', () => {
  it('name the CRD, the controllers and the --controllers flag', () => {
    const [app] = requiredCrds(['app']);
    assert.equal(
      missingCrdMessage(app!),
      'CRD apps.kappctrl.k14s.io is not installed (needed by --controllers=app); install crds/ or leave "app" out of --controllers',
    );
    const packages = requiredCrds(['packagerepository', 'packageinstall']).find(
      (c) => c.name === 'packages.data.packaging.carvel.dev',
    );
    assert.equal(
      missingCrdMessage(packages!),
      'CRD packages.data.packaging.carvel.dev is not installed (needed by --controllers=packagerepository,packageinstall); ' +
        'install crds/ or leave "packagerepository", "packageinstall" out of --controllers',
    );
    assert.equal(
      deletedCrdMessage(app!),
      'CRD apps.kappctrl.k14s.io was deleted while running (needed by --controllers=app); ' +
        'those controllers wait until it is installed again, the others keep working',
    );
  });
});

describe('missingCrds', () => {
  const required = requiredCrds(['secretimport', 'app']);
  const all: Array<[string, DiscoveryAnswer]> = [
    [
      'secretgen.carvel.dev/v1alpha1',
      ['secretexports', 'secretexports/status', 'secretimports', 'secretimports/status'],
    ],
    ['kappctrl.k14s.io/v1alpha1', ['apps', 'apps/status']],
  ];
  const cases: Array<[string, Array<[string, DiscoveryAnswer]>, string[]]> = [
    ['all served', all, []],
    [
      'group/version not served at all',
      [all[0]!, ['kappctrl.k14s.io/v1alpha1', 'absent']],
      ['apps.kappctrl.k14s.io'],
    ],
    [
      'group served without the resource',
      [['secretgen.carvel.dev/v1alpha1', ['secretexports', 'secretexports/status']], all[1]!],
      ['secretimports.secretgen.carvel.dev'],
    ],
    [
      'only a subresource listed does not count',
      [all[0]!, ['kappctrl.k14s.io/v1alpha1', ['apps/status']]],
      ['apps.kappctrl.k14s.io'],
    ],
    ['no answer for a group/version', [all[0]!], ['apps.kappctrl.k14s.io']],
  ];
  for (const [name, answers, want] of cases) {
    it(name, () =>
      assert.deepEqual(
        missingCrds(required, new Map(answers)).map((c) => c.name),
        want,
      ),
    );
  }
});
