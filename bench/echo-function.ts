/** The benchmark's function: echoes its params, served by the fnmesh SDK (the same for direct and mesh calls). */
import { serve } from '../sdk';

serve({ echo: (params: unknown) => params });
