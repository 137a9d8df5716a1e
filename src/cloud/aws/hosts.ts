// Which registry hosts are ECR's, and the region and API endpoint for each.
// Parsed label by label (no regular expression over the host), so a hostile
// host name costs time linear in its length.

export interface EcrHost {
  /** The 12-digit account, or undefined for a configured extra host. */
  account: string | undefined;
  region: string;
  fips: boolean;
  /** `amazonaws.com` or `amazonaws.com.cn`; `on.aws` for a dual-stack (IPv4 and IPv6) registry host. */
  dnsSuffix: string;
}

const MAX_HOST_LENGTH = 253;

function isDigits(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 48 || code > 57) return false;
  }
  return text.length > 0;
}

/** An AWS region name such as `eu-west-1`, `us-gov-east-1`, `cn-north-1`: lower-case words and a number, by hyphens. */
export function isRegionName(text: string): boolean {
  if (text.length < 4 || text.length > 32) return false;
  const words = text.split('-');
  if (words.length < 3) return false;
  const last = words[words.length - 1] ?? '';
  if (!isDigits(last)) return false;
  for (const word of words.slice(0, -1)) {
    if (word.length === 0) return false;
    for (let i = 0; i < word.length; i++) {
      const code = word.charCodeAt(i);
      if (code < 97 || code > 122) return false;
    }
  }
  return true;
}

/**
 * `<12-digit account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]`, or the
 * dual-stack `<12-digit account>.dkr-ecr[-fips].<region>.on.aws`; lower-case,
 * without a port (ECR serves 443 only, and the contract drops `:443`).
 */
export function parseEcrHost(host: string): EcrHost | undefined {
  if (host.length > MAX_HOST_LENGTH) return undefined;
  const labels = host.split('.');
  if (labels.length === 5) return parseDualStackHost(labels);
  if (labels.length !== 6 && labels.length !== 7) return undefined;
  const [account, dkr, ecr, region, amazonaws, com, cn] = labels as [
    string,
    string,
    string,
    string,
    string,
    string,
    string | undefined,
  ];
  if (account.length !== 12 || !isDigits(account)) return undefined;
  if (dkr !== 'dkr' || (ecr !== 'ecr' && ecr !== 'ecr-fips')) return undefined;
  if (!isRegionName(region)) return undefined;
  if (amazonaws !== 'amazonaws' || com !== 'com' || (cn !== undefined && cn !== 'cn')) return undefined;
  return {
    account,
    region,
    fips: ecr === 'ecr-fips',
    dnsSuffix: cn === undefined ? 'amazonaws.com' : 'amazonaws.com.cn',
  };
}

function parseDualStackHost(labels: string[]): EcrHost | undefined {
  const [account, service, region, on, aws] = labels as [string, string, string, string, string];
  if (account.length !== 12 || !isDigits(account)) return undefined;
  if (service !== 'dkr-ecr' && service !== 'dkr-ecr-fips') return undefined;
  if (!isRegionName(region) || on !== 'on' || aws !== 'aws') return undefined;
  return { account, region, fips: service === 'dkr-ecr-fips', dnsSuffix: 'on.aws' };
}

/** `host[:port]` lower-case, `:443` dropped: the form the provider contract passes hosts in. */
export function normalizeHost(host: string): string {
  const lower = host.trim().toLowerCase();
  return lower.endsWith(':443') ? lower.slice(0, -4) : lower;
}

/**
 * The ECR API endpoint for a registry host: the regional (or FIPS) API host in the same partition; for a
 * dual-stack registry host, the dual-stack API host (`ecr[-fips].<region>.api.aws`), so a Pod that has
 * only IPv6 reaches both.
 */
export function ecrApiEndpoint(host: EcrHost): string {
  if (host.dnsSuffix === 'on.aws') return `https://${host.fips ? 'ecr-fips' : 'ecr'}.${host.region}.api.aws`;
  return host.fips
    ? `https://ecr-fips.${host.region}.${host.dnsSuffix}`
    : `https://api.ecr.${host.region}.${host.dnsSuffix}`;
}

/** The regional STS endpoint; China regions live under amazonaws.com.cn. */
export function stsEndpoint(region: string): string {
  return `https://sts.${region}.${region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com'}`;
}
