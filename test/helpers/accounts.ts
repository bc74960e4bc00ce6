import { spawnSync } from 'node:child_process';

// System accounts for tests that run mcr's programs as the service would: made only where
// missing, and removed afterwards only if this process made them. Accounts of the host are
// never changed.

function run(command: string, args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(command, args, { encoding: 'utf8', timeout: 60000 });
  return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? r.error?.message ?? '' };
}

function must(command: string, args: string[]): void {
  const r = run(command, args);
  if (r.code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
}

export function userExists(name: string): boolean {
  return run('getent', ['passwd', name]).code === 0;
}

export function groupExists(name: string): boolean {
  return run('getent', ['group', name]).code === 0;
}

/** The members of a group as /etc/group lists them (not the users whose primary group it is). */
export function groupMembers(name: string): string[] {
  const line = run('getent', ['group', name]).stdout.trim();
  const members = line.split(':')[3] ?? '';
  return members === '' ? [] : members.split(',');
}

/** What a test made, so that exactly that is removed. */
export class TestAccounts {
  private readonly users: string[] = [];
  private readonly groups: string[] = [];

  /**
   * Applies a sysusers.d file with systemd-sysusers, as a package does, and remembers which of
   * `users` and `groups` (those the file names) did not exist before.
   */
  applySysusers(file: string, users: string[], groups: string[]): void {
    const newUsers = users.filter((u) => !userExists(u));
    // A user line makes a group of the same name too.
    const newGroups = [...new Set([...groups, ...users])].filter((g) => !groupExists(g));
    this.users.push(...newUsers);
    this.groups.push(...newGroups);
    must('systemd-sysusers', [file]);
  }

  /**
   * A system account of the test's own (no login, no home, a group of the same name), in
   * `groups` too. The name must be new: an existing account is never taken over.
   */
  createUser(name: string, groups: string[] = []): void {
    if (userExists(name) || groupExists(name)) throw new Error(`account or group ${name} exists already`);
    this.users.push(name);
    this.groups.push(name);
    must('useradd', [
      ...['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent'],
      ...['--shell', '/usr/sbin/nologin', '--comment', 'mcr test account, removed by the test'],
      ...(groups.length > 0 ? ['--groups', groups.join(',')] : []),
      name,
    ]);
  }

  /** Removes what this object made (users first, then groups), and says what it could not. */
  removeAll(): void {
    const problems: string[] = [];
    for (const user of this.users.splice(0).reverse()) {
      if (!userExists(user)) continue;
      const r = run('userdel', [user]);
      if (r.code !== 0) problems.push(`userdel ${user}: ${r.stderr.trim()}`);
    }
    for (const group of this.groups.splice(0).reverse()) {
      if (!groupExists(group)) continue; // userdel removes a user's own group
      const r = run('groupdel', [group]);
      if (r.code !== 0) problems.push(`groupdel ${group}: ${r.stderr.trim()}`);
    }
    if (problems.length > 0) throw new Error(`test accounts left behind: ${problems.join('; ')}`);
  }
}
