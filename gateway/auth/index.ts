export {
  ASYMMETRIC_ALGORITHMS,
  HMAC_ALGORITHMS,
  bearerToken,
  createJwtVerifier,
  type JwtConfig,
  type JwtVerifier,
  type JwtVerifierOptions,
} from './jwt';
